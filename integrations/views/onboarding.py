"""Onboarding (docs/architecture.md#from-sync-now-to-the-live-page): /onboarding/ → Connect GitHub →
GitHub's authorize page → the callback → the organization choice → the new team's page, while the
members are imported in the background.

`?team=<slug>` on github_connect is an admin of an existing team: a team without an integration
goes through the organization choice; a team with one is reconnected (new token) and its admin sent
back to the members page.

Every failure is a page that says what happened and what to do, with a way back; never the token
or the code in a page or a log.
"""

import logging
import secrets
import time

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods

from integrations import crypto, words
from integrations.connections import connect_organization, is_connected_to, reconnect
from integrations.github import app
from integrations.github.client import GitHubClient
from integrations.github.errors import (
    GitHubError,
    GitHubUnavailable,
    MalformedResponse,
    OAuthError,
    RateLimited,
    organization_sso_url,
)
from integrations.github.oauth import authorize_url, exchange_code
from integrations.github.schemas import Organization
from integrations.models import GitHubIntegration
from teams.models import Team
from teams.services import first_team_of, membership_of

logger = logging.getLogger(__name__)

# The sign-in under way, from github_connect to github_callback: {"state", "created_at", "team"}.
STATE_SESSION_KEY = "github_oauth_state"
# From the callback to the organization choice: {"token" (encrypted), "scopes", "team", "organizations"}.
PENDING_SESSION_KEY = "github_onboarding"
STATE_LIFETIME_SECONDS = 600


@require_GET
@login_required
def onboarding(request):
    team = first_team_of(request.user)
    if team is not None:
        return redirect("teams:team_home", team_slug=team.slug)
    context = {"github_configured": bool(settings.GITHUB_CLIENT_ID), "github_app_configured": app.configured()}
    return render(request, "integrations/onboarding.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def github_connect(request):
    team, integration = team_to_connect(request)
    if not settings.GITHUB_CLIENT_ID:
        return _problem(
            request, words.GITHUB_NOT_CONFIGURED, title=words.GITHUB_NOT_CONFIGURED_TITLE, status=503, team=team
        )
    if not confirmed_start(request, integration):
        becomes = f"{request.user.get_username()}'s GitHub account (OAuth), the one you authorize next"
        return start_page(request, "integrations:github_connect", "Connect GitHub", team, integration, becomes)
    state = new_state(request, STATE_SESSION_KEY, team, replaces=integration is not None)
    # A new sign-in replaces one abandoned at the organization choice.
    request.session.pop(PENDING_SESSION_KEY, None)
    return redirect(authorize_url(state=state, redirect_uri=_redirect_uri(request)))


@require_GET
@login_required
@sensitive_variables("token")
def github_callback(request):
    started, team, problem = checked_authorization(request, STATE_SESSION_KEY)
    if problem is not None:
        return problem
    try:
        token = exchange_code(request.GET["code"], redirect_uri=_redirect_uri(request))
    except (GitHubError, requests.RequestException) as error:
        return _github_problem(request, error, team=team)
    integration = GitHubIntegration.objects.filter(team=team).first() if team else None
    if integration is not None:
        # A connection made meanwhile was not the one the admin confirmed replacing.
        if not started.get("replaces"):
            return _problem(request, words.REPLACEMENT_UNCONFIRMED, status=409, team=team)
        return _reconnect(request, integration, token)
    request.session[PENDING_SESSION_KEY] = {
        "token": crypto.encrypt(token.access_token),
        "scopes": token.scopes,
        "team": team and team.slug,
    }
    return redirect("integrations:github_select_org")


@require_http_methods(["GET", "POST"])
@login_required
@sensitive_variables("token")
def github_select_org(request):
    pending = request.session.get(PENDING_SESSION_KEY)
    if pending is None:
        return redirect("onboarding")
    team = _admin_team(request.user, pending["team"]) if pending["team"] else None
    try:
        token = crypto.decrypt(pending["token"])
    except crypto.TokenUnreadable:
        del request.session[PENDING_SESSION_KEY]
        return _problem(request, words.SIGN_IN_UNREADABLE, team=team)
    try:
        organizations = _listed_organizations(request, pending, token)
    except (GitHubError, requests.RequestException) as error:
        return _github_problem(request, error, team=team)
    if request.method == "GET":
        hidden = [
            {"login": login, "sso_url": organization_sso_url(login, web_url=settings.GITHUB_WEB_URL)}
            for login in pending.get("sso_hidden", [])
        ]
        context = {"organizations": organizations, "sso_hidden": hidden, "team": team}
        return render(request, "integrations/select_organization.html", context)

    chosen = next((org for org in organizations if str(org.id) == request.POST.get("organization")), None)
    if chosen is None:
        return _problem(
            request, words.ORGANIZATION_NOT_YOURS, back=(reverse("integrations:github_select_org"), "Choose again")
        )
    team = connect_organization(
        user=request.user, organization=chosen, token=token, scopes=pending["scopes"], team=team
    )
    del request.session[PENDING_SESSION_KEY]
    messages.success(request, words.CONNECTED.format(organization=chosen.login))
    return redirect("teams:team_home", team_slug=team.slug)


@sensitive_variables("token")
def _listed_organizations(request, pending, token) -> list[Organization]:
    """The user's organizations as GitHub lists them: fetched for the page and kept in the session,
    so that the choice posted is checked against the list shown (an id not in it is refused)."""
    if request.method == "POST" and "organizations" in pending:
        return [Organization(**organization) for organization in pending["organizations"]]
    organizations, sso_hidden = _organizations_of(token, name_sso_hidden=True)
    pending["organizations"] = [org.model_dump(include={"id", "login", "name"}) for org in organizations]
    pending["sso_hidden"] = [org.login for org in sso_hidden]
    request.session.modified = True
    return organizations


@sensitive_variables("token")
def _reconnect(request, integration, token):
    team = integration.team
    try:
        organizations, _ = _organizations_of(token.access_token)
    except (GitHubError, requests.RequestException) as error:
        return _github_problem(request, error, team=team)
    # A token of another GitHub account would only fail at the next sync.
    organization = next((org for org in organizations if is_connected_to(integration, org)), None)
    if organization is None:
        return _problem(request, words.NOT_THE_ORGANIZATIONS.format(login=integration.organization_login), team=team)
    reconnect(
        integration=integration,
        user=request.user,
        token=token.access_token,
        scopes=token.scopes,
        organization=organization,
    )
    messages.success(request, "GitHub is connected again. Press Sync Now to update the members.")
    return redirect("integrations:github_members", team_slug=team.slug)


@sensitive_variables("token")
def _organizations_of(token: str, *, name_sso_hidden=False) -> tuple[list[Organization], list[Organization]]:
    """The user's organizations, and (if asked) those GitHub hides until the user signs in to their
    SAML single sign-on, which a user would otherwise look for in vain."""
    # A single retry, without backoff, so that the page does not hang while GitHub is down.
    with GitHubClient(token, retries=1) as client:
        organizations, hidden_ids = client.viewer_organizations()
        hidden = []
        for org_id in hidden_ids[:10] if name_sso_hidden else []:
            try:
                hidden.append(client.organization(org_id))
            except GitHubError:
                logger.info("Could not name the organization %s hidden by single sign-on", org_id)
    return organizations, hidden


def team_to_connect(request) -> tuple[Team | None, GitHubIntegration | None]:
    """The team `?team=SLUG` (or the posted `team`) names, which the user must administer (None for a
    new team), and its connection if it has one."""
    slug = request.POST.get("team") or request.GET.get("team")
    if not slug:
        return None, None
    team = _admin_team(request.user, slug)
    return team, GitHubIntegration.objects.filter(team=team).select_related("connected_by").first()


def confirmed_start(request, integration: GitHubIntegration | None) -> bool:
    """Whether this request starts connecting: a POST (Django's middleware checked its CSRF token),
    which for a team with a connection must also confirm replacing it. A GET only shows the button,
    so a link or an image on another site changes nothing (docs/architecture.md#the-github-app)."""
    if request.method != "POST":
        return False
    return integration is None or request.POST.get("confirm") == "replace"


def new_state(request, session_key: str, team: Team | None, **kept) -> str:
    """A fresh state for the authorization this session starts, kept under `session_key` with its
    time, its team and `kept` until GitHub hands it back."""
    state = secrets.token_urlsafe(32)
    request.session[session_key] = {"state": state, "created_at": time.time(), "team": team and team.slug, **kept}
    return state


def start_page(request, url_name: str, label: str, team, integration, becomes: str):
    """The page with the button that starts connecting; for a team with a connection, what it is now
    and what it becomes, with Confirm and Cancel."""
    context = {
        "action": reverse(url_name),
        "label": label,
        "team": team,
        "integration": integration,
        "now": integration.description if integration else "",
        "becomes": becomes,
    }
    return render(request, "integrations/start_connection.html", context)


def _admin_team(user, team_slug) -> Team:
    """teams.decorators' rule for a slug not in the path: a non-member gets 404, a non-admin 403."""
    membership = membership_of(user, team_slug)
    if membership is None:
        raise Http404("No such team.")
    if not membership.is_admin:
        raise PermissionDenied("Only team admins may connect GitHub.")
    return membership.team


def checked_authorization(
    request, session_key, *, not_started=words.SIGN_IN_NOT_STARTED, wrong_state=words.SIGN_IN_WRONG_STATE
):
    """GitHub's answer to an authorization this session started, checked (its state, its age, an
    error, the code): (what the session started, its team, None), or (None, team, the problem page)."""
    # Popped, so that a state works once, whatever comes of it.
    started = request.session.pop(session_key, None)
    if started is None:
        return None, None, _problem(request, not_started)
    team = _admin_team(request.user, started["team"]) if started["team"] else None
    if not secrets.compare_digest(started["state"].encode(), request.GET.get("state", "").encode()):
        problem = wrong_state
    elif time.time() - started["created_at"] > STATE_LIFETIME_SECONDS:
        problem = words.SIGN_IN_EXPIRED.format(minutes=STATE_LIFETIME_SECONDS // 60)
    elif "error" in request.GET:
        problem = OAuthError(request.GET["error"]).message
    elif not request.GET.get("code"):
        problem = words.NO_CODE
    else:
        return started, team, None
    return None, team, _problem(request, problem, team=team)


def _redirect_uri(request) -> str:
    return request.build_absolute_uri(reverse("integrations:github_callback"))


def _github_problem(request, error, *, team=None):
    code = error.code if isinstance(error, OAuthError) else ""
    logger.warning("Connecting GitHub failed: %s %s", type(error).__name__, code)
    if isinstance(error, RateLimited):
        message = f"GitHub's rate limit for your account is used up until {error.reset_at:%H:%M} UTC. Try again then."
        return _problem(request, message, title=words.GITHUB_BUSY, status=502, team=team)
    if isinstance(error, GitHubUnavailable | MalformedResponse | requests.RequestException):
        return _problem(request, words.GITHUB_UNAVAILABLE, title=words.GITHUB_UNAVAILABLE_TITLE, status=502, team=team)
    return _problem(request, error.message, team=team)


def _problem(request, message, *, title=words.NOT_CONNECTED_TITLE, status=400, team=None, back=None):
    if back is None and team is not None:
        back = (reverse("integrations:github_members", args=[team.slug]), f"Back to the members of {team.name}")
    back_url, back_label = back or (reverse("onboarding"), "Back to Connect GitHub")
    context = {"title": title, "message": message, "back_url": back_url, "back_label": back_label}
    return render(request, "integrations/oauth_problem.html", context, status=status)
