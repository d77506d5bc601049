"""Connecting through the GitHub App (docs/architecture.md#the-github-app): Install the GitHub App →
GitHub's install page → github_app_setup with installation_id → the App's user authorization →
github_app_setup again with code and state → the team's page, while the members are imported.

An installation_id in a URL proves nothing (anyone can type one): the installation is connected
only if the user's own authorization lists it (GET /user/installations) and it is on an
organization. The user's token is used for that and dropped; the integration stores no token.

`?team=<slug>` on github_app_install is an admin of an existing team: a team without an integration
is connected; one connected to the same organization is switched to the installation.
"""

import re
import secrets

import requests
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods

from integrations import words
from integrations.connections import (
    ReplacementUnconfirmed,
    WrongOrganization,
    connect_installation,
)
from integrations.github import app
from integrations.github.errors import AppNotConfigured, GitHubError
from integrations.views.onboarding import (
    _admin_team,
    _github_problem,
    _problem,
    checked_authorization,
    confirmed_start,
    new_state,
    start_page,
    team_to_connect,
)

# The install under way: {"state", "created_at", "team"}, and "installation_id" once GitHub sent it.
STATE_SESSION_KEY = "github_app_state"
INSTALLATION_ID = re.compile(r"[1-9][0-9]{0,17}")


@require_http_methods(["GET", "POST"])
@login_required
def github_app_install(request):
    team, integration = team_to_connect(request)
    if not app.configured():
        return _problem(request, AppNotConfigured.message, title=words.APP_NOT_CONFIGURED, status=503, team=team)
    if not confirmed_start(request, integration):
        on = integration.organization_login if integration else "the organization you choose on GitHub"
        becomes = f"the GitHub App's installation on {on}"
        return start_page(
            request, "integrations:github_app_install", "Install the GitHub App", team, integration, becomes
        )
    state = new_state(request, STATE_SESSION_KEY, team, replaces=integration is not None)
    return redirect(app.install_url(state=state))


@require_GET
@login_required
def github_app_setup(request):
    """GitHub's setup URL after an install, and the App's user authorization callback: one URL, as
    GitHub allows one fixed setup URL (docs/interfaces.md#urls)."""
    if "code" in request.GET or "error" in request.GET:
        return _authorized(request)
    return _installed(request)


def _installed(request):
    """Back from the install page: ask the user to authorize the App, which proves what they may reach."""
    started = request.session.get(STATE_SESSION_KEY)
    if request.GET.get("setup_action") == "request":  # nothing installed, nothing to connect
        return _problem(request, words.INSTALL_REQUESTED, title="Installation requested", status=200)
    # GitHub hands back the state of the install link. Without this session's, an installation_id
    # is a link anyone could have sent (an install begun on GitHub itself, or on another site), and
    # nothing is connected from it.
    if started is None or "installation_id" in started:
        return _problem(request, words.INSTALL_NOT_STARTED, team=None)
    if not secrets.compare_digest(started["state"].encode(), request.GET.get("state", "").encode()):
        return _problem(request, words.INSTALL_WRONG_STATE, team=None)
    team = _admin_team(request.user, started["team"]) if started["team"] else None
    installation_id = request.GET.get("installation_id", "")
    if not INSTALLATION_ID.fullmatch(installation_id):
        return _problem(request, words.NO_INSTALLATION, team=team)
    if not app.configured():
        return _problem(request, AppNotConfigured.message, title=words.APP_NOT_CONFIGURED, status=503, team=team)
    state = new_state(
        request, STATE_SESSION_KEY, team, installation_id=int(installation_id), replaces=started.get("replaces", False)
    )
    return redirect(app.authorize_url(state=state, redirect_uri=_setup_uri(request)))


@sensitive_variables("token")
def _authorized(request):
    started, team, problem = checked_authorization(
        request, STATE_SESSION_KEY, not_started=words.INSTALL_NOT_STARTED, wrong_state=words.INSTALL_WRONG_STATE
    )
    if problem is not None:
        return problem

    def not_connected(message: str, status: int = 400):
        return _problem(request, message, title=words.APP_NOT_CONNECTED, status=status, team=team)

    # With "Request user authorization during installation" GitHub authorizes right after the
    # install and names the installation here; it is checked like any other.
    installation_id = started.get("installation_id") or request.GET.get("installation_id", "")
    if not INSTALLATION_ID.fullmatch(str(installation_id)):
        return _problem(request, words.NO_INSTALLATION, team=team)
    try:
        token = app.exchange_code(request.GET["code"], redirect_uri=_setup_uri(request))
        installations = app.user_installations(token.access_token)
    except (GitHubError, requests.RequestException) as error:
        return _github_problem(request, error, team=team)
    installation = next((each for each in installations if each.id == int(installation_id)), None)
    if installation is None:
        return not_connected(words.INSTALLATION_NOT_REACHABLE, 403)
    account = installation.account
    if account is None or not installation.on_organization:
        return not_connected(words.NOT_AN_ORGANIZATION)
    if installation.suspended_at is not None:
        return not_connected(words.INSTALLATION_SUSPENDED.format(login=account.login), 409)
    # Reaching an installation is not enough: any member reaches it, and its token reads more than
    # a plain member may see.
    try:
        owner = app.owns_organization(token.access_token, account.login)
    except (GitHubError, requests.RequestException) as error:
        return _github_problem(request, error, team=team)
    if not owner:
        message = words.NOT_AN_OWNER.format(login=account.login)
        return _problem(request, message, title="Ask an owner to connect it", status=403, team=team)
    try:
        connected, created = connect_installation(
            user=request.user, installation=installation, team=team, replace=started.get("replaces", False)
        )
    except WrongOrganization as error:
        connected_to = error.integration.organization_login
        return not_connected(words.WRONG_ORGANIZATION.format(connected=connected_to, installed=account.login), 409)
    except ReplacementUnconfirmed as error:
        now = error.integration.description
        return not_connected(words.APP_REPLACEMENT_UNCONFIRMED.format(team=error.integration.team.name, now=now), 409)
    if not created:
        messages.success(request, f"{connected.name} now reads {account.login} through the GitHub App.")
        return redirect("integrations:github_members", team_slug=connected.slug)
    messages.success(request, words.CONNECTED.format(organization=account.login))
    return redirect("teams:team_home", team_slug=connected.slug)


def _setup_uri(request) -> str:
    return request.build_absolute_uri(reverse("integrations:github_app_setup"))
