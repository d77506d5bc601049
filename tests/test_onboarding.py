"""Onboarding over real HTTP: Connect GitHub, the simulator's authorize page, the callback, the
organization choice and the new team; every way it can go wrong; reconnecting a team."""

import logging
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from django.template.loader import render_to_string
from django.urls import reverse

from integrations.github.schemas import Organization
from integrations.models import GitHubIntegration, MemberSyncRun
from integrations.views.onboarding import PENDING_SESSION_KEY, STATE_LIFETIME_SECONDS, STATE_SESSION_KEY
from teams.models import Membership, Team

CONNECT = reverse("integrations:github_connect")
CALLBACK = reverse("integrations:github_callback")
SELECT_ORG = reverse("integrations:github_select_org")
ONBOARDING = reverse("onboarding")


class AuthorizePage(HTMLParser):
    """The simulator's authorize page: its form's action and fields, and the Cancel link."""

    def __init__(self, html):
        super().__init__()
        self.action, self.fields, self.cancel = None, {}, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs["action"]
        elif tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs.get("value", "")
        elif tag == "a" and "cancel" in attrs.get("class", ""):
            self.cancel = attrs["href"]


@pytest.fixture
def oauth(github, settings):
    settings.GITHUB_WEB_URL = github.url
    settings.GITHUB_API_URL = github.url
    settings.GITHUB_GRAPHQL_URL = f"{github.url}/graphql"
    settings.GITHUB_CLIENT_ID = "member-sync-test"
    settings.GITHUB_CLIENT_SECRET = "member-sync-test-secret"
    return github


@pytest.fixture
def dana(django_user_model):
    return django_user_model.objects.create_user("dana")


@pytest.fixture
def browser(client, dana):
    client.force_login(dana)
    client.pages = []
    return client


def visit(browser, method, url, data=None):
    """A request through Django's test client whose page is kept, to look for secrets in afterwards."""
    response = getattr(browser, method)(url, data or {})
    browser.pages.append(response.content.decode())
    return response


def authorize_page(browser, *, scope=None, team=None):
    """Connect GitHub, and GitHub's authorize page it leads to."""
    response = visit(browser, "get", CONNECT + (f"?team={team}" if team else ""))
    assert response.status_code == 302
    url = response["Location"]
    if scope is not None:
        parts = urlsplit(url)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        url = urlunsplit(parts._replace(query=urlencode({**query, "scope": scope})))
    page = requests.get(url, timeout=10)
    assert page.status_code == 200
    return url, AuthorizePage(page.text)


def authorize(browser, github, **options):
    """Press Authorize on GitHub's page: the callback URL GitHub sends the browser back to."""
    _, page = authorize_page(browser, **options)
    answer = requests.post(github.url + page.action, data=page.fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    return answer.headers["Location"]


def with_query(url, **changes):
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode({k: v for k, v in query.items() if v is not None})))


def onboard(browser, github, organization="acme"):
    """The whole flow, up to the redirect after the organization choice."""
    assert visit(browser, "get", authorize(browser, github))["Location"] == SELECT_ORG
    assert visit(browser, "get", SELECT_ORG).status_code == 200
    return visit(browser, "post", SELECT_ORG, {"organization": github.org(organization).id})


def queued_messages(broker):
    return broker.client.llen(f"{broker.namespace}:member_sync")


def assert_problem(response, status, text, back=ONBOARDING):
    assert response.status_code == status
    assert text in response.content.decode()
    assert f'href="{back}"' in response.content.decode()


def assert_nothing_created(browser):
    assert not Team.objects.exists()
    assert not GitHubIntegration.objects.exists()
    assert not MemberSyncRun.objects.exists()
    assert PENDING_SESSION_KEY not in browser.session


@pytest.mark.django_db(transaction=True)
class TestConnectingAnOrganization:
    def test_it_creates_the_team_the_admin_and_the_integration_and_queues_a_sync(
        self, browser, oauth, dana, broker, caplog
    ):
        caplog.set_level(logging.DEBUG)
        response = onboard(browser, oauth)

        team = Team.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("teams:team_home", args=[team.slug])
        assert (team.name, team.slug) == ("acme", "acme")
        assert Membership.objects.get(team=team).user == dana
        assert Membership.objects.get(team=team).role == Membership.Role.ADMIN
        integration = team.github_integration
        assert integration.organization_login == "acme"
        assert integration.organization_id == oauth.org("acme").id
        assert integration.scope_list == ["read:org"]
        assert integration.connected_by == dana
        run = integration.member_sync_runs.get()
        assert (run.trigger, run.status, run.requested_by) == (MemberSyncRun.Trigger.ONBOARDING, "queued", dana)
        assert queued_messages(broker) == 1
        assert STATE_SESSION_KEY not in browser.session
        assert PENDING_SESSION_KEY not in browser.session

    def test_the_token_is_stored_encrypted_and_never_shown_or_logged(self, browser, oauth, broker, caplog):
        caplog.set_level(logging.DEBUG)
        callback = authorize(browser, oauth)
        code = parse_qs(urlsplit(callback).query)["code"][0]
        visit(browser, "get", callback)
        pending = browser.session[PENDING_SESSION_KEY]
        visit(browser, "get", SELECT_ORG)
        visit(browser, "post", SELECT_ORG, {"organization": oauth.org("acme").id})
        visit(browser, "get", reverse("teams:team_home", args=["acme"]))

        token = GitHubIntegration.objects.get().access_token
        assert token.startswith("gh")
        assert token not in GitHubIntegration.objects.values_list("encrypted_access_token", flat=True).get()
        assert token not in str(pending)
        for secret in (token, code):
            assert not any(secret in page for page in browser.pages)
            assert secret not in caplog.text

    def test_no_request_waits_on_the_organizations_members(self, browser, oauth, broker):
        onboard(browser, oauth)

        paths = {urlsplit(target).path for _, target in oauth.requests}
        assert paths == {"/login/oauth/authorize", "/login/oauth/access_token", "/user/orgs"}

    def test_a_second_onboarding_for_the_same_organization_returns_the_existing_team(self, browser, oauth, broker):
        first = onboard(browser, oauth)
        second = onboard(browser, oauth)

        assert second["Location"] == first["Location"] == reverse("teams:team_home", args=["acme"])
        assert Team.objects.count() == 1
        assert MemberSyncRun.objects.count() == 1

    def test_the_slug_gets_a_suffix_when_taken(self, browser, oauth, broker):
        Team.objects.create(name="Someone else's acme", slug="acme")
        Team.objects.create(name="And another", slug="acme-2")

        response = onboard(browser, oauth)

        assert response["Location"] == reverse("teams:team_home", args=["acme-3"])
        assert Team.objects.get(slug="acme-3").name == "acme"

    def test_an_admin_connects_an_existing_team_without_an_integration(self, browser, oauth, dana, broker):
        team = Team.objects.create(name="Platform", slug="platform")
        Membership.objects.create(team=team, user=dana, role=Membership.Role.ADMIN)

        callback = authorize(browser, oauth, team="platform")
        assert visit(browser, "get", callback)["Location"] == SELECT_ORG
        page = visit(browser, "get", SELECT_ORG)
        assert "imported into Platform" in page.content.decode()
        response = visit(browser, "post", SELECT_ORG, {"organization": oauth.org("acme").id})

        assert response["Location"] == reverse("teams:team_home", args=["platform"])
        assert Team.objects.count() == 1
        assert team.github_integration.organization_login == "acme"
        assert team.github_integration.member_sync_runs.get().trigger == MemberSyncRun.Trigger.ONBOARDING


@pytest.mark.django_db
class TestTheOrganizationChoice:
    def test_it_shows_one_button_per_organization(self, browser, oauth):
        oauth.add_org("globex", size=3)
        oauth.add_org("initech", size=2)
        visit(browser, "get", authorize(browser, oauth))

        page = visit(browser, "get", SELECT_ORG).content.decode()

        assert page.count('<button type="submit" name="organization"') == 3
        for login in ("acme", "globex", "initech"):
            assert f'value="{oauth.org(login).id}">{login}</button>' in page
        assert 'name="csrfmiddlewaretoken"' in page

    def test_it_shows_organization_names_escaped(self, rf):
        organizations = [Organization(id=7, login="acme", name='<img src=x onerror="alert(1)">')]

        page = render_to_string("integrations/select_organization.html", {"organizations": organizations})

        assert "<img" not in page
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page

    def test_it_refuses_an_organization_that_is_not_yours(self, browser, oauth):
        visit(browser, "get", authorize(browser, oauth))
        visit(browser, "get", SELECT_ORG)

        response = visit(browser, "post", SELECT_ORG, {"organization": "424242"})

        assert_problem(response, 400, "not one of your GitHub organizations", back=SELECT_ORG)
        assert not Team.objects.exists()
        assert not GitHubIntegration.objects.exists()

    def test_it_checks_the_choice_against_github_when_the_list_was_never_shown(self, browser, oauth):
        visit(browser, "get", authorize(browser, oauth))

        response = visit(browser, "post", SELECT_ORG, {"organization": "424242"})

        assert response.status_code == 400
        assert ("GET", "/user/orgs?per_page=100") in oauth.requests
        assert not Team.objects.exists()

    def test_github_unavailable_while_listing_organizations_is_a_502_page(self, browser, oauth):
        visit(browser, "get", authorize(browser, oauth))
        oauth.inject("server_error", times=None)

        response = visit(browser, "get", SELECT_ORG)

        assert_problem(response, 502, "GitHub did not answer as expected")
        assert not Team.objects.exists()


@pytest.mark.django_db
class TestTheCallbackRefuses:
    def test_a_wrong_state(self, browser, oauth):
        response = visit(browser, "get", with_query(authorize(browser, oauth), state="not-the-state"))

        assert_problem(response, 400, "does not belong to the sign-in started here")
        assert_nothing_created(browser)

    def test_a_state_with_characters_a_token_never_has(self, browser, oauth):
        response = visit(browser, "get", with_query(authorize(browser, oauth), state="é<script>"))

        assert_problem(response, 400, "does not belong to the sign-in started here")
        assert "<script>" not in response.content.decode()

    def test_a_reused_state(self, browser, oauth):
        callback = authorize(browser, oauth)
        assert visit(browser, "get", callback).status_code == 302

        response = visit(browser, "get", callback)

        assert_problem(response, 400, "was not started here, or was already used")

    def test_an_expired_state(self, browser, oauth):
        callback = authorize(browser, oauth)
        session = browser.session
        session[STATE_SESSION_KEY]["created_at"] -= STATE_LIFETIME_SECONDS + 1
        session.save()

        response = visit(browser, "get", callback)

        assert_problem(response, 400, "expired")
        assert_nothing_created(browser)

    def test_a_callback_nobody_started(self, browser, oauth):
        response = visit(browser, "get", CALLBACK + "?code=abc&state=xyz")

        assert_problem(response, 400, "was not started here")

    def test_access_denied_on_githubs_page(self, browser, oauth):
        _, page = authorize_page(browser)
        cancel = requests.get(oauth.url + page.cancel, allow_redirects=False, timeout=10)
        assert "error=access_denied" in cancel.headers["Location"]

        response = visit(browser, "get", cancel.headers["Location"])

        assert_problem(response, 400, "GitHub access was not granted")
        assert_nothing_created(browser)

    def test_any_other_error_from_github(self, browser, oauth):
        response = visit(
            browser, "get", with_query(authorize(browser, oauth), code=None, error="application_suspended")
        )

        assert_problem(response, 400, "GitHub could not complete the sign-in (application_suspended)")

    def test_a_missing_code(self, browser, oauth):
        response = visit(browser, "get", with_query(authorize(browser, oauth), code=None))

        assert_problem(response, 400, "GitHub sent no authorization code")
        assert_nothing_created(browser)

    def test_a_code_github_refuses(self, browser, oauth):
        response = visit(browser, "get", with_query(authorize(browser, oauth), code="0123456789abcdef0123"))

        assert_problem(response, 400, "authorization code is invalid or has expired")
        assert_nothing_created(browser)

    def test_a_token_without_read_org(self, browser, oauth):
        response = visit(browser, "get", authorize(browser, oauth, scope="user:email"))

        assert_problem(response, 400, "did not grant the read:org permission")
        assert_nothing_created(browser)

    def test_github_unavailable_with_a_502_page(self, browser, oauth):
        callback = authorize(browser, oauth)
        oauth.inject("server_error", times=None, path="/login/oauth/access_token")

        response = visit(browser, "get", callback)

        assert_problem(response, 502, "GitHub did not answer as expected")
        assert_nothing_created(browser)


@pytest.mark.django_db
class TestStepsOutOfOrder:
    def test_a_user_with_a_team_goes_from_onboarding_to_the_team_page(self, browser, dana):
        team = Team.objects.create(name="Acme", slug="acme")
        Membership.objects.create(team=team, user=dana, role=Membership.Role.MEMBER)

        response = browser.get(ONBOARDING)

        assert response.status_code == 302
        assert response["Location"] == reverse("teams:team_home", args=["acme"])

    def test_the_organization_choice_without_a_token_goes_to_onboarding(self, browser, oauth):
        for method in ("get", "post"):
            response = getattr(browser, method)(SELECT_ORG)
            assert response.status_code == 302
            assert response["Location"] == ONBOARDING
        assert not Team.objects.exists()

    @pytest.mark.parametrize("url", [ONBOARDING, CONNECT, CALLBACK + "?code=abc&state=xyz", SELECT_ORG])
    def test_anonymous_users_log_in_first(self, client, oauth, url):
        response = client.get(url)

        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.django_db
class TestTheOnboardingPage:
    def test_it_offers_connect_github(self, browser, oauth):
        page = browser.get(ONBOARDING).content.decode()

        assert f'href="{CONNECT}">Connect GitHub</a>' in page

    def test_without_a_client_id_it_says_github_is_not_configured(self, browser, oauth, settings):
        settings.GITHUB_CLIENT_ID = ""

        page = browser.get(ONBOARDING).content.decode()
        connect = browser.get(CONNECT)

        assert "GitHub is not configured on this server" in page
        assert ">Connect GitHub</a>" not in page
        assert connect.status_code == 503
        assert "GITHUB_CLIENT_ID" in connect.content.decode()


@pytest.mark.django_db
class TestReconnecting:
    @pytest.fixture
    def team(self, dana, oauth, django_user_model):
        team = Team.objects.create(name="Acme", slug="acme")
        Membership.objects.create(team=team, user=dana, role=Membership.Role.ADMIN)
        bob = django_user_model.objects.create_user("bob")
        Membership.objects.create(team=team, user=bob, role=Membership.Role.MEMBER)
        integration = GitHubIntegration(team=team, organization_login="acme", organization_id=oauth.org("acme").id)
        integration.access_token = "gho_revoked"
        integration.save()
        team.bob = bob
        return team

    def test_an_admin_gets_a_new_token_and_goes_back_to_the_members_page(self, browser, oauth, team, dana):
        response = visit(browser, "get", authorize(browser, oauth, team="acme"))

        assert response.status_code == 302
        assert response["Location"] == reverse("integrations:github_members", args=["acme"])
        integration = GitHubIntegration.objects.get()
        assert integration.access_token not in ("", "gho_revoked")
        assert (integration.scope_list, integration.connected_by) == (["read:org"], dana)
        assert Team.objects.count() == 1
        assert PENDING_SESSION_KEY not in browser.session

    def test_an_account_outside_the_organization_is_refused(self, browser, oauth, team):
        GitHubIntegration.objects.update(organization_id=1, organization_login="elsewhere")

        response = visit(browser, "get", authorize(browser, oauth, team="acme"))

        assert_problem(
            response, 400, "does not belong to elsewhere", back=reverse("integrations:github_members", args=["acme"])
        )
        assert GitHubIntegration.objects.get().access_token == "gho_revoked"

    def test_a_problem_leads_back_to_the_members_page(self, browser, oauth, team):
        response = visit(browser, "get", with_query(authorize(browser, oauth, team="acme"), state="forged"))

        assert_problem(response, 400, "does not belong", back=reverse("integrations:github_members", args=["acme"]))
        assert GitHubIntegration.objects.get().access_token == "gho_revoked"

    def test_a_member_who_is_not_an_admin_cannot_reconnect(self, client, oauth, team):
        client.force_login(team.bob)

        response = client.get(CONNECT + "?team=acme")

        assert response.status_code == 403
        assert STATE_SESSION_KEY not in client.session

    def test_a_non_member_cannot_learn_the_team_exists(self, browser, oauth):
        Team.objects.create(name="Hidden", slug="hidden")

        assert browser.get(CONNECT + "?team=hidden").status_code == 404
        assert browser.get(CONNECT + "?team=no-such-team").status_code == 404
