"""Connecting through the GitHub App (docs/architecture.md#the-github-app): Install the GitHub App,
the setup URL, the App's user authorization that proves the installation is the user's, the team and
its integration, and a sync that reads with the installation's tokens.

GitHub's App endpoints are replaced at the client's edge (integrations/github/app.py's functions);
the OAuth pages and the members are the simulator's. Charlie, who has no team yet, is the newcomer.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.github import app
from integrations.github.client import GitHubClient
from integrations.github.errors import InstallationNotFound, InstallationSuspended
from integrations.github.schemas import Installation, InstallationAccount, OAuthToken
from integrations.member_sync.tasks import sync_github_members
from integrations.models import ConnectionChange, GitHubIntegration, GitHubMember, MemberSyncRun
from integrations.views.github_app import STATE_SESSION_KEY
from teams.models import Membership, Team
from tests.oauth_flow import ONBOARDING, AuthorizePage, assert_nothing_created, start, visit, with_query
from tests.oauth_flow import authorize as oauth_authorize

INSTALL = reverse("integrations:github_app_install")
SETUP = reverse("integrations:github_app_setup")
INSTALLATION_ID = 31337
USER_TOKEN = "ghu_charlies-user-token"


@pytest.fixture(scope="module")
def private_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def github_app(oauth, settings, private_key):
    """This server's GitHub App, on the simulator's web pages; no installation token kept."""
    settings.GITHUB_APP_ID = "4242"
    settings.GITHUB_APP_SLUG = "member-sync"
    settings.GITHUB_APP_PRIVATE_KEY = private_key
    settings.GITHUB_APP_CLIENT_ID = "Iv1.member-sync"
    settings.GITHUB_APP_CLIENT_SECRET = "member-sync-app-secret"
    app.forget_installation_tokens()
    yield oauth
    app.forget_installation_tokens()


class Reachable(list):
    """The installations a user's token reaches; and the codes exchanged for it (``codes``)."""


@pytest.fixture
def users_installations(github_app, monkeypatch):
    """What GitHub answers the App's user authorization: a user token for the code, and the
    installations that token reaches (by default, the App on the simulator's acme)."""
    acme = github_app.org("acme")
    reachable = Reachable(
        [Installation(id=INSTALLATION_ID, account=InstallationAccount(id=acme.id, login="acme", type="Organization"))]
    )
    codes = reachable.codes = []
    reachable.github = github_app

    def exchange_code(code, *, redirect_uri):
        codes.append((code, redirect_uri))
        return OAuthToken(access_token=USER_TOKEN, token_type="bearer", scopes=[])

    def user_installations(token):
        assert token == USER_TOKEN
        return list(reachable)

    # Whether the user owns the organization (GET /user/memberships/orgs/{org}): by default, yes.
    reachable.owner = True
    reachable.asked_owner = []

    def owns_organization(token, org_login):
        assert token == USER_TOKEN
        reachable.asked_owner.append(org_login)
        return reachable.owner

    monkeypatch.setattr(app, "exchange_code", exchange_code)
    monkeypatch.setattr(app, "user_installations", user_installations)
    monkeypatch.setattr(app, "owns_organization", owns_organization)
    return reachable


def install(visitor, *, team=None, installation_id=INSTALLATION_ID):
    """Install the GitHub App, and GitHub's redirect to the setup URL after the install: the
    redirect to the App's user authorization this server answers it with."""
    response = start(visitor, INSTALL, team)
    assert response.status_code == 302
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    query = {"installation_id": installation_id, "setup_action": "install", "state": state}
    return visit(visitor, "get", SETUP, query)


def authorize(visitor, **options):
    """The whole flow: install, authorize, and the setup URL's answer to the authorization."""
    authorization = install(visitor, **options)
    assert authorization.status_code == 302
    state = parse_qs(urlsplit(authorization["Location"]).query)["state"][0]
    return visit(visitor, "get", SETUP, {"code": "the-code", "state": state})


# The pages offer it.


def test_the_onboarding_page_offers_install_the_github_app(client, charlie, github_app):
    client.force_login(charlie)

    page = client.get(ONBOARDING).content.decode()

    assert f'action="{INSTALL}">' in page
    assert ">Install the GitHub App</button>" in page
    assert ">Connect GitHub</button>" in page


def test_without_an_app_configured_the_onboarding_page_is_unchanged(client, charlie, oauth, settings):
    settings.GITHUB_APP_ID = ""
    client.force_login(charlie)

    page = client.get(ONBOARDING).content.decode()
    response = client.get(INSTALL)

    assert "Install the GitHub App" not in page
    assert response.status_code == 503
    assert "GITHUB_APP_ID" in response.content.decode()


def test_the_members_page_offers_the_app_to_admins_only(client, alice, bob, integration, github_app):
    members = reverse("integrations:github_members", args=[integration.team.slug])

    client.force_login(alice)
    admin_page = client.get(members).content.decode()
    client.force_login(bob)
    member_page = client.get(members).content.decode()

    assert '<input type="hidden" name="team" value="acme"><button type="submit">Install the GitHub App</button>' in (
        admin_page
    )
    assert ">Install the GitHub App</button>" not in member_page


def test_a_team_already_on_the_app_is_not_offered_it(client, alice, integration, github_app):
    integration.connection, integration.installation_id = GitHubIntegration.Connection.APP, INSTALLATION_ID
    integration.save()
    client.force_login(alice)

    page = client.get(reverse("integrations:github_members", args=["acme"])).content.decode()

    assert ">Install the GitHub App</button>" not in page


def test_a_team_whose_installation_is_gone_is_offered_the_app_again(client, alice, integration, github_app):
    integration.connection, integration.installation_id = GitHubIntegration.Connection.APP, INSTALLATION_ID
    integration.disconnected_at = timezone.now()
    integration.save()
    client.force_login(alice)

    page = client.get(reverse("integrations:github_members", args=["acme"])).content.decode()

    assert ">Install the GitHub App</button>" in page


# The flow.


def test_install_leads_to_the_apps_install_page_with_a_state(client, charlie, github_app):
    client.force_login(charlie)

    response = client.post(INSTALL)

    location = urlsplit(response["Location"])
    assert (
        f"{location.scheme}://{location.netloc}{location.path}"
        == f"{github_app.url}/github-apps/member-sync/installations/new"
    )
    assert parse_qs(location.query)["state"] == [client.session[STATE_SESSION_KEY]["state"]]


def test_the_setup_url_asks_the_user_to_authorize_the_app(visitor, charlie, users_installations):
    visitor.force_login(charlie)

    response = install(visitor)

    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert location.path == "/login/oauth/authorize"
    assert query["client_id"] == ["Iv1.member-sync"]
    assert query["redirect_uri"] == [f"http://testserver{SETUP}"]
    assert query["state"] == [visitor.session[STATE_SESSION_KEY]["state"]]
    assert visitor.session[STATE_SESSION_KEY]["installation_id"] == INSTALLATION_ID
    assert_nothing_created(visitor)


@pytest.mark.django_db(transaction=True)
def test_it_creates_the_team_the_admin_and_an_app_integration_and_queues_a_sync(
    visitor, charlie, users_installations, broker
):
    visitor.force_login(charlie)

    response = authorize(visitor)

    team = Team.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("teams:team_home", args=[team.slug])
    assert (team.name, team.slug) == ("acme", "acme")
    assert Membership.objects.get(team=team).user == charlie
    assert Membership.objects.get(team=team).role == Membership.Role.ADMIN
    integration = team.github_integration
    assert integration.connection == GitHubIntegration.Connection.APP
    assert integration.installation_id == INSTALLATION_ID
    assert (integration.organization_login, integration.organization_id) == ("acme", users_installations[0].account.id)
    assert integration.connected_by == charlie
    assert not integration.has_access_token
    run = integration.member_sync_runs.get()
    assert (run.trigger, run.status, run.requested_by) == (MemberSyncRun.Trigger.ONBOARDING, "queued", charlie)
    assert users_installations.codes == [("the-code", f"http://testserver{SETUP}")]
    assert STATE_SESSION_KEY not in visitor.session
    page = visit(visitor, "get", response["Location"]).content.decode()
    assert 0 < page.index("Connected to acme. Members syncing in background.") < page.index('id="member-sync-banner"')
    assert USER_TOKEN not in "".join(visitor.pages)


@pytest.mark.django_db(transaction=True)
def test_a_forged_installation_id_is_refused_and_nothing_is_created(visitor, charlie, users_installations, broker):
    visitor.force_login(charlie)

    response = authorize(visitor, installation_id=INSTALLATION_ID + 1)

    assert response.status_code == 403
    assert "not one your GitHub account can reach" in response.content.decode()
    assert_nothing_created(visitor)


@pytest.mark.django_db(transaction=True)
def test_a_plain_member_of_the_organization_is_told_to_ask_an_owner_and_nothing_is_created(
    visitor, charlie, users_installations, broker
):
    users_installations.owner = False
    visitor.force_login(charlie)

    response = authorize(visitor)

    assert response.status_code == 403
    assert "Ask an owner of acme to connect it" in response.content.decode()
    assert users_installations.asked_owner == ["acme"]
    assert_nothing_created(visitor)


@pytest.mark.django_db(transaction=True)
def test_a_plain_member_cannot_switch_a_team_they_administer_to_the_installation(
    visitor, alice, integration, users_installations
):
    users_installations.owner = False
    visitor.force_login(alice)

    response = authorize(visitor, team="acme")

    assert response.status_code == 403
    integration.refresh_from_db()
    assert (integration.connection, integration.installation_id) == (GitHubIntegration.Connection.OAUTH, None)
    assert integration.has_access_token


@pytest.mark.django_db(transaction=True)
def test_an_installation_on_a_personal_account_is_refused(visitor, charlie, users_installations, broker):
    users_installations[0] = Installation(
        id=INSTALLATION_ID, account=InstallationAccount(id=5, login="charlie", type="User")
    )
    visitor.force_login(charlie)

    response = authorize(visitor)

    assert response.status_code == 400
    assert "not an organization" in response.content.decode()
    assert_nothing_created(visitor)


@pytest.mark.django_db(transaction=True)
def test_a_suspended_installation_is_refused(visitor, charlie, users_installations, broker):
    users_installations[0] = users_installations[0].model_copy(update={"suspended_at": "2026-01-01T00:00:00Z"})
    visitor.force_login(charlie)

    response = authorize(visitor)

    assert response.status_code == 409
    assert "suspended" in response.content.decode()
    assert_nothing_created(visitor)


@pytest.mark.django_db(transaction=True)
def test_an_authorization_not_started_here_or_with_another_state_is_refused(visitor, charlie, users_installations):
    visitor.force_login(charlie)

    not_started = visit(visitor, "get", SETUP, {"code": "the-code", "state": "forged"})
    install(visitor)
    wrong_state = visit(visitor, "get", SETUP, {"code": "the-code", "state": "forged"})

    assert not_started.status_code == wrong_state.status_code == 400
    assert "was not started here" in not_started.content.decode()
    assert "does not belong to the installation started here" in wrong_state.content.decode()
    assert users_installations.codes == []
    assert_nothing_created(visitor)


def test_a_setup_url_without_an_installation_says_so(client, charlie, github_app):
    client.force_login(charlie)
    state = parse_qs(urlsplit(client.post(INSTALL)["Location"]).query)["state"][0]

    response = client.get(SETUP, {"installation_id": "x'; --", "state": state})

    assert response.status_code == 400
    assert "named no installation" in response.content.decode()


def test_an_install_an_owner_must_approve_says_so(client, charlie, github_app):
    client.force_login(charlie)

    response = client.get(SETUP, {"setup_action": "request"})

    assert response.status_code == 200
    assert "sent to the organization" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_same_installation_twice_makes_one_team(visitor, charlie, users_installations, broker):
    visitor.force_login(charlie)

    first = authorize(visitor)
    second = authorize(visitor)

    assert first["Location"] == reverse("teams:team_home", args=["acme"])
    assert second["Location"] == reverse("integrations:github_members", args=["acme"])
    assert Team.objects.count() == GitHubIntegration.objects.count() == MemberSyncRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_admin_connects_an_existing_team_without_an_integration(
    visitor, alice, bob, team, users_installations, broker
):
    visitor.force_login(bob)
    assert visit(visitor, "post", INSTALL, {"team": "acme"}).status_code == 403
    visitor.force_login(alice)

    response = authorize(visitor, team="acme")

    assert response["Location"] == reverse("teams:team_home", args=["acme"])
    assert Team.objects.count() == 1
    assert team.github_integration.installation_id == INSTALLATION_ID
    assert team.github_integration.member_sync_runs.get().trigger == MemberSyncRun.Trigger.ONBOARDING


@pytest.mark.django_db(transaction=True)
def test_a_team_on_a_persons_token_is_switched_to_the_installation(visitor, alice, integration, users_installations):
    GitHubMember.objects.create(integration=integration, github_id=1, login="kept")
    visitor.force_login(alice)

    response = authorize(visitor, team="acme")

    assert response["Location"] == reverse("integrations:github_members", args=["acme"])
    switched = GitHubIntegration.objects.get()
    assert switched.pk == integration.pk
    assert (switched.connection, switched.installation_id) == (GitHubIntegration.Connection.APP, INSTALLATION_ID)
    assert not switched.has_access_token
    assert switched.members.get().login == "kept"
    assert Team.objects.count() == 1
    assert not MemberSyncRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_switching_to_the_installation_is_recorded_with_what_it_replaced(
    visitor, alice, integration, users_installations
):
    visitor.force_login(alice)

    authorize(visitor, team="acme")

    change = ConnectionChange.objects.get()
    assert (change.kind, change.by) == ("replaced", alice)
    assert (change.before, change.after) == (
        "alice's GitHub account (OAuth), reading acme",
        "the GitHub App's installation on acme",
    )


@pytest.mark.django_db(transaction=True)
def test_a_team_of_another_organization_is_not_switched(visitor, alice, integration, users_installations):
    users_installations[0] = Installation(
        id=INSTALLATION_ID, account=InstallationAccount(id=999_999, login="globex", type="Organization")
    )
    visitor.force_login(alice)

    response = authorize(visitor, team="acme")

    assert response.status_code == 409
    assert "connected to acme, but the GitHub App was installed on globex" in response.content.decode()
    integration.refresh_from_db()
    assert (integration.connection, integration.installation_id) == (GitHubIntegration.Connection.OAUTH, None)
    assert integration.has_access_token


@pytest.mark.django_db(transaction=True)
def test_reconnecting_with_a_persons_token_leaves_the_app(visitor, alice, integration, github_app):
    integration.connection, integration.installation_id = GitHubIntegration.Connection.APP, INSTALLATION_ID
    integration.access_token = ""
    integration.save()
    visitor.force_login(alice)

    visit(visitor, "get", oauth_authorize(visitor, github_app, team="acme"))

    integration.refresh_from_db()
    assert (integration.connection, integration.installation_id) == (GitHubIntegration.Connection.OAUTH, None)
    assert integration.has_access_token


# The sync reads with the installation's tokens.


@pytest.fixture
def app_integration(integration, github_token, monkeypatch):
    """Acme's integration on the App: the installation's token minted (here: one the simulator takes)
    whenever asked for."""
    integration.connection, integration.installation_id = GitHubIntegration.Connection.APP, INSTALLATION_ID
    integration.access_token = ""
    integration.save()
    minted = []

    def installation_token(installation_id):
        minted.append(installation_id)
        return github_token

    monkeypatch.setattr(app, "installation_token", installation_token)
    integration.minted = minted
    return integration


def start_run(integration):
    return MemberSyncRun.objects.create(integration=integration, trigger=MemberSyncRun.Trigger.MANUAL)


@pytest.mark.django_db(transaction=True)
def test_a_sync_of_an_installation_reads_with_its_tokens(app_integration):
    run = start_run(app_integration)

    sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert run.status == MemberSyncRun.Status.COMPLETE, run.error
    assert GitHubMember.objects.filter(integration=app_integration, is_active=True).count() == 250
    # Minted before the run reads, then asked for before every request.
    assert set(app_integration.minted) == {INSTALLATION_ID}
    assert len(app_integration.minted) > 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("error", "says", "kind"),
    [
        (InstallationNotFound, "Install the GitHub App again", MemberSyncRun.ErrorKind.INSTALLATION),
        (InstallationSuspended, "The App's installation is suspended", MemberSyncRun.ErrorKind.SUSPENDED),
    ],
)
def test_an_installation_gone_or_suspended_fails_the_run_saying_what_to_do(
    app_integration, monkeypatch, error, says, kind
):
    def refused(installation_id):
        raise error

    monkeypatch.setattr(app, "installation_token", refused)
    run = start_run(app_integration)

    sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert (run.status, run.error_kind) == (MemberSyncRun.Status.ERROR, kind)
    assert says in run.error


def test_an_installations_bot_is_not_held_to_the_partial_sight_rule(github, github_token):
    # GitHub answers viewerIsAMember false to an installation, whose bot is no member, yet shows it
    # every member; the simulator answers so for a person removed from the organization.
    github.org("acme").remove_viewer()

    with GitHubClient(
        github_token, installation=True, graphql_url=f"{github.url}/graphql", api_url=github.url
    ) as client:
        pages = list(client.iter_member_pages("acme"))

    assert sum(len(page.members) for page in pages) > 0


# End to end against the simulator as a GitHub App: its install page, its user authorization, its
# /user/installations and the installation tokens it mints for the App's JWT.


@pytest.fixture
def simulated_app(oauth, settings):
    """This server's GitHub App is the simulator's: its id, slug, key and client, and the simulator
    sends installs to this server's setup URL."""
    registration = oauth.app
    settings.GITHUB_APP_ID = str(registration.id)
    settings.GITHUB_APP_SLUG = registration.slug
    settings.GITHUB_APP_PRIVATE_KEY = registration.private_key_pem
    settings.GITHUB_APP_CLIENT_ID = registration.client_id
    settings.GITHUB_APP_CLIENT_SECRET = registration.client_secret
    registration.configure(setup_url=f"http://testserver{SETUP}")
    app.forget_installation_tokens()
    yield oauth
    app.forget_installation_tokens()


def local(url):
    """A URL of this server (the test client's http://testserver) as the test client asks for it."""
    parts = urlsplit(url)
    assert parts.netloc == "testserver", url
    return f"{parts.path}?{parts.query}"


def install_on_github(visitor, github, organization="acme"):
    """Install the GitHub App, and press Install on the simulator's install page: where GitHub sends
    the browser back (the setup URL)."""
    install_page = start(visitor, INSTALL)["Location"]
    state = parse_qs(urlsplit(install_page).query)["state"][0]
    page = requests.get(install_page, timeout=10)
    assert f"Install on {organization}" in page.text
    answer = requests.post(
        urlsplit(install_page)._replace(query="").geturl(),
        data={"target_id": github.org(organization).id, "state": state},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    return answer.headers["Location"]


def authorize_on_github(visitor, setup_url):
    """The setup URL, the App's authorize page it leads to, and Authorize: the setup URL's answer."""
    authorization = visit(visitor, "get", local(setup_url))
    assert authorization.status_code == 302
    page = AuthorizePage(requests.get(authorization["Location"], timeout=10).text)
    github_url = urlsplit(authorization["Location"])._replace(path="", query="").geturl()
    answer = requests.post(github_url + page.action, data=page.fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    return visit(visitor, "get", local(answer.headers["Location"]))


@pytest.mark.django_db(transaction=True)
def test_end_to_end_an_installation_becomes_a_team_whose_sync_reads_with_installation_tokens(
    visitor, charlie, simulated_app, broker
):
    visitor.force_login(charlie)

    setup_url = install_on_github(visitor, simulated_app)
    response = authorize_on_github(visitor, setup_url)

    installation_id = int(parse_qs(urlsplit(setup_url).query)["installation_id"][0])
    team = Team.objects.get()
    assert response["Location"] == reverse("teams:team_home", args=[team.slug])
    integration = team.github_integration
    assert (integration.connection, integration.installation_id) == (GitHubIntegration.Connection.APP, installation_id)
    assert integration.organization_id == simulated_app.org("acme").id
    assert not integration.has_access_token
    run = integration.member_sync_runs.get()
    assert run.trigger == MemberSyncRun.Trigger.ONBOARDING

    sync_github_members.fn(run.pk)

    run.refresh_from_db()
    # The installation's bot is no member of acme (viewerIsAMember false), yet the run reads all of it.
    assert run.status == MemberSyncRun.Status.COMPLETE, run.error
    assert GitHubMember.objects.filter(integration=integration, is_active=True).count() == 250
    minted = [target for method, target in simulated_app.requests if target.startswith("/app/installations/")]
    assert minted == [f"/app/installations/{installation_id}/access_tokens"]


@pytest.mark.django_db(transaction=True)
def test_end_to_end_an_installation_the_user_cannot_reach_is_refused(visitor, charlie, simulated_app, broker):
    # The App is installed on globex too, an organization octocat (the simulator's user) is not in.
    simulated_app.add_org("globex", 3)
    foreign = simulated_app.install_app("globex")
    simulated_app.org("globex").remove_viewer()
    visitor.force_login(charlie)
    setup_url = install_on_github(visitor, simulated_app)

    response = authorize_on_github(visitor, with_query(setup_url, installation_id=str(foreign.id)))

    assert response.status_code == 403
    assert "not one your GitHub account can reach" in response.content.decode()
    assert_nothing_created(visitor)


@pytest.mark.django_db(transaction=True)
def test_end_to_end_a_token_is_minted_once_then_again_near_its_end(simulated_app):
    installation = simulated_app.install_app("acme")

    first, second = app.installation_token(installation.id), app.installation_token(installation.id)
    simulated_app.app.configure(token_lifetime_seconds=120)
    app.forget_installation_token(installation.id)
    short_lived = [app.installation_token(installation.id) for _ in range(2)]

    assert first == second
    assert len(set(short_lived)) == 2
    minted = [target for _, target in simulated_app.requests if target.endswith("/access_tokens")]
    assert len(minted) == 3


@pytest.mark.django_db(transaction=True)
def test_end_to_end_an_uninstalled_app_fails_the_run_saying_install_it_again(simulated_app, integration):
    installation = simulated_app.install_app("acme")
    integration.connection, integration.installation_id = GitHubIntegration.Connection.APP, installation.id
    integration.save()
    simulated_app.uninstall_app(installation.id)
    run = start_run(integration)

    sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert run.status == MemberSyncRun.Status.ERROR
    assert "Install the GitHub App again" in run.error


@pytest.mark.django_db(transaction=True)
def test_end_to_end_a_plain_member_of_the_organization_cannot_bind_its_installation(
    visitor, charlie, simulated_app, broker
):
    # octocat, whom the simulator authorizes, is a member of acme and reaches its installation, but
    # is no owner: with a team of their own they would read every concealed member.
    simulated_app.org("acme").set_viewer_role("member")
    visitor.force_login(charlie)
    setup_url = install_on_github(visitor, simulated_app)

    response = authorize_on_github(visitor, setup_url)

    assert response.status_code == 403
    assert "Ask an owner of acme to connect it" in response.content.decode()
    assert_nothing_created(visitor)
    asked = [(target, kind) for _, target, kind in simulated_app.credentials if "/memberships/" in target]
    assert asked == [("/user/memberships/orgs/acme", "ghu")]


# A connection changes only on purpose.


def test_a_cross_site_get_of_install_the_github_app_shows_the_button_and_starts_nothing(
    client, alice, integration, github_app
):
    client.force_login(alice)

    for_a_new_team = client.get(INSTALL, headers={"referer": "https://evil.example/"})
    for_the_team = client.get(f"{INSTALL}?team=acme", headers={"referer": "https://evil.example/"})

    assert (for_a_new_team.status_code, for_the_team.status_code) == (200, 200)
    assert ">Install the GitHub App</button>" in for_a_new_team.content.decode()
    assert "the GitHub App&#x27;s installation on acme" in for_the_team.content.decode()
    assert STATE_SESSION_KEY not in client.session


def test_install_the_github_app_posted_without_the_csrf_token_is_refused(charlie, github_app):
    client = Client(enforce_csrf_checks=True)
    client.force_login(charlie)

    response = client.post(INSTALL)

    assert response.status_code == 403
    assert STATE_SESSION_KEY not in client.session


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("state", [None, "another-sessions-state"], ids=["no state", "a foreign state"])
def test_a_setup_url_with_an_installation_id_but_not_this_sessions_state_connects_nothing(
    visitor, charlie, users_installations, broker, state
):
    visitor.force_login(charlie)
    start(visitor, INSTALL)  # an install of charlie's own under way: its state is not the one sent
    query = {"installation_id": INSTALLATION_ID, "setup_action": "install"}

    response = visit(visitor, "get", SETUP, query if state is None else {**query, "state": state})

    assert response.status_code == 400
    assert "Install the GitHub App" in response.content.decode()
    assert "installation_id" not in visitor.session[STATE_SESSION_KEY]
    assert_nothing_created(visitor)


@pytest.mark.django_db(transaction=True)
def test_switching_a_team_to_the_app_asks_to_confirm_and_cancel_leaves_it(
    visitor, alice, integration, users_installations
):
    visitor.force_login(alice)

    unconfirmed = visit(visitor, "post", INSTALL, {"team": "acme"})

    page = unconfirmed.content.decode()
    assert unconfirmed.status_code == 200
    assert "alice&#x27;s GitHub account (OAuth), reading acme" in page
    assert ">Confirm</button>" in page
    assert f'href="{reverse("integrations:github_members", args=["acme"])}">Cancel</a>' in page
    assert STATE_SESSION_KEY not in visitor.session
    integration.refresh_from_db()
    assert (integration.connection, integration.has_access_token) == (GitHubIntegration.Connection.OAUTH, True)


@pytest.mark.django_db(transaction=True)
def test_an_install_without_a_team_does_not_switch_the_users_team_unasked(
    visitor, alice, integration, users_installations
):
    visitor.force_login(alice)

    response = authorize(visitor)  # from the onboarding page's button: no team, nothing confirmed

    assert response.status_code == 409
    assert "needs your confirmation" in response.content.decode()
    integration.refresh_from_db()
    assert (integration.connection, integration.has_access_token) == (GitHubIntegration.Connection.OAUTH, True)


@pytest.mark.django_db(transaction=True)
def test_end_to_end_after_the_app_flow_a_sync_reads_github_with_the_installation_token_only(
    visitor, charlie, simulated_app, broker
):
    visitor.force_login(charlie)
    authorize_on_github(visitor, install_on_github(visitor, simulated_app))
    run = Team.objects.get().github_integration.member_sync_runs.get()
    before_the_sync = len(simulated_app.credentials)

    sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert run.status == MemberSyncRun.Status.COMPLETE, run.error
    kinds = {kind for _, _, kind in simulated_app.credentials[before_the_sync:]}
    # The App's JWT mints the installation token, which reads everything; no person's token (gho_, ghu_).
    assert kinds == {"jwt", "ghs"}


# The replaced connection's token is revoked at GitHub.


@pytest.mark.django_db(transaction=True)
def test_switching_a_team_to_the_app_revokes_the_persons_token_at_github(
    visitor, alice, integration, github_token, users_installations
):
    visitor.force_login(alice)

    authorize(visitor, team="acme")

    revoked = users_installations.github.tokens.revoked
    assert [(each.token, each.kind) for each in revoked] == [(github_token, "gho")]


@pytest.mark.django_db(transaction=True)
def test_end_to_end_leaving_the_app_for_a_persons_token_revokes_the_kept_installation_token(
    visitor, alice, integration, simulated_app
):
    installation = simulated_app.install_app("acme")
    integration.connection, integration.installation_id = GitHubIntegration.Connection.APP, installation.id
    integration.access_token = ""
    integration.save()
    kept = app.installation_token(installation.id)
    visitor.force_login(alice)

    visit(visitor, "get", oauth_authorize(visitor, simulated_app, team="acme"))

    assert [(each.token, each.kind) for each in simulated_app.tokens.revoked] == [(kept, "ghs")]
    assert app.installation_token(installation.id) != kept  # a new one is minted if it is asked for again
