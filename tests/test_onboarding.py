"""Onboarding over real HTTP, the way it should go: the onboarding page, Connect GitHub, the
simulator's authorize page, the callback, the organization choice and the new team. Charlie, who
has no team yet, is the newcomer."""

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from integrations.github.schemas import Organization
from integrations.models import ConnectionChange, GitHubIntegration, MemberSyncRun
from integrations.views.onboarding import PENDING_SESSION_KEY, STATE_SESSION_KEY
from teams.models import Membership, Team
from tests.oauth_flow import CONNECT, ONBOARDING, SELECT_ORG, assert_problem, authorize, onboard, visit

# On PostgreSQL too (.ci/run): SELECT … FOR UPDATE, a free team slug claimed by a unique constraint.
pytestmark = pytest.mark.postgres


def queued_messages(broker):
    return broker.client.llen(f"{broker.namespace}:member_sync")


def test_the_onboarding_page_offers_connect_github(client, charlie, oauth):
    client.force_login(charlie)

    page = client.get(ONBOARDING).content.decode()

    assert f'<form method="post" action="{CONNECT}">' in page
    assert ">Connect GitHub</button>" in page


def test_without_a_client_id_the_onboarding_page_says_github_is_not_configured(client, charlie, oauth, settings):
    settings.GITHUB_CLIENT_ID = ""
    client.force_login(charlie)

    page = client.get(ONBOARDING).content.decode()
    connect = client.post(CONNECT)

    assert "GitHub is not configured on this server" in page
    assert ">Connect GitHub</button>" not in page
    assert connect.status_code == 503
    assert "GITHUB_CLIENT_ID" in connect.content.decode()


def test_behind_a_tls_proxy_github_is_given_an_https_callback(client, charlie, oauth, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["members.example.com"]
    client.force_login(charlie)

    proxied = {"host": "members.example.com", "x-forwarded-proto": "https"}
    authorize_url = client.post(CONNECT, headers=proxied)["Location"]

    assert parse_qs(urlsplit(authorize_url).query)["redirect_uri"] == ["https://members.example.com/github/callback/"]


@pytest.mark.django_db(transaction=True)
def test_it_creates_the_team_the_admin_and_the_integration_and_queues_a_sync(visitor, charlie, oauth, broker):
    visitor.force_login(charlie)

    response = onboard(visitor, oauth)

    team = Team.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("teams:team_home", args=[team.slug])
    assert (team.name, team.slug) == ("acme", "acme")
    assert Membership.objects.get(team=team).user == charlie
    assert Membership.objects.get(team=team).role == Membership.Role.ADMIN
    integration = team.github_integration
    assert integration.organization_login == "acme"
    assert integration.organization_id == oauth.org("acme").id
    assert integration.scopes == "read:org"
    assert integration.connected_by == charlie
    run = integration.member_sync_runs.get()
    assert (run.trigger, run.status, run.requested_by) == (MemberSyncRun.Trigger.ONBOARDING, "queued", charlie)
    assert queued_messages(broker) == 1
    assert STATE_SESSION_KEY not in visitor.session
    assert PENDING_SESSION_KEY not in visitor.session


def test_connecting_is_recorded_with_who_connected(visitor, charlie, oauth, broker):
    visitor.force_login(charlie)

    onboard(visitor, oauth)

    change = ConnectionChange.objects.get()
    assert (change.kind, change.by, change.before) == ("connected", charlie, "")
    assert change.after == "charlie's GitHub account (OAuth), reading acme"


@pytest.mark.django_db(transaction=True)
def test_the_team_page_greets_above_the_live_banner(visitor, charlie, oauth, broker):
    visitor.force_login(charlie)

    page = visit(visitor, "get", onboard(visitor, oauth)["Location"]).content.decode()

    assert 0 < page.index("Connected to acme. Members syncing in background.") < page.index('id="member-sync-banner"')


@pytest.mark.django_db(transaction=True)
def test_the_token_is_stored_encrypted_and_never_shown_or_logged(visitor, charlie, oauth, broker, caplog):
    caplog.set_level(logging.DEBUG)
    visitor.force_login(charlie)
    callback = authorize(visitor, oauth)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    visit(visitor, "get", callback)
    pending = visitor.session[PENDING_SESSION_KEY]
    visit(visitor, "get", SELECT_ORG)
    visit(visitor, "post", SELECT_ORG, {"organization": oauth.org("acme").id})
    visit(visitor, "get", reverse("teams:team_home", args=["acme"]))

    token = GitHubIntegration.objects.get().access_token
    assert token.startswith("gh")
    assert token not in GitHubIntegration.objects.values_list("encrypted_access_token", flat=True).get()
    assert token not in str(pending)
    for secret in (token, code):
        assert not any(secret in page for page in visitor.pages)
        assert secret not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_no_request_waits_on_the_organizations_members(visitor, charlie, oauth, broker):
    visitor.force_login(charlie)

    onboard(visitor, oauth)

    paths = {urlsplit(target).path for _, target in oauth.requests}
    assert paths == {"/login/oauth/authorize", "/login/oauth/access_token", "/user/orgs"}


@pytest.mark.django_db(transaction=True)
def test_a_second_onboarding_for_the_same_organization_returns_the_existing_team(visitor, charlie, oauth, broker):
    visitor.force_login(charlie)

    first = onboard(visitor, oauth)
    second = onboard(visitor, oauth)

    assert second["Location"] == first["Location"] == reverse("teams:team_home", args=["acme"])
    assert Team.objects.count() == 1
    assert MemberSyncRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_slug_gets_a_suffix_when_taken(visitor, charlie, oauth, broker):
    Team.objects.create(name="Someone else's acme", slug="acme")
    Team.objects.create(name="And another", slug="acme-2")
    visitor.force_login(charlie)

    response = onboard(visitor, oauth)

    assert response["Location"] == reverse("teams:team_home", args=["acme-3"])
    assert Team.objects.get(slug="acme-3").name == "acme"


@pytest.mark.django_db(transaction=True)
def test_an_admin_connects_an_existing_team_without_an_integration(visitor, charlie, other_team, oauth, broker):
    visitor.force_login(charlie)

    callback = authorize(visitor, oauth, team="globex")
    assert visit(visitor, "get", callback)["Location"] == SELECT_ORG
    page = visit(visitor, "get", SELECT_ORG)
    assert "imported into Globex" in page.content.decode()
    response = visit(visitor, "post", SELECT_ORG, {"organization": oauth.org("acme").id})

    assert response["Location"] == reverse("teams:team_home", args=["globex"])
    assert Team.objects.count() == 1
    assert other_team.github_integration.organization_login == "acme"
    assert other_team.github_integration.member_sync_runs.get().trigger == MemberSyncRun.Trigger.ONBOARDING


def test_the_organization_choice_shows_one_button_per_organization(visitor, charlie, oauth):
    oauth.add_org("globex", size=3)
    oauth.add_org("initech", size=2)
    visitor.force_login(charlie)
    visit(visitor, "get", authorize(visitor, oauth))

    page = visit(visitor, "get", SELECT_ORG).content.decode()

    assert page.count('<button type="submit" name="organization"') == 3
    for login in ("acme", "globex", "initech"):
        assert f'value="{oauth.org(login).id}">{login}</button>' in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_the_organization_choice_names_those_hidden_by_saml_sso_with_a_link_to_sign_in(visitor, charlie, oauth):
    oauth.add_org("secret-corp", 3)
    oauth.inject("sso_partial", orgs=["secret-corp"])
    visitor.force_login(charlie)
    visit(visitor, "get", authorize(visitor, oauth))

    page = visit(visitor, "get", SELECT_ORG).content.decode()

    hidden = page[page.index('id="sso-hidden-organizations"') :]
    hidden = hidden[: hidden.index("</div>")]
    assert "secret-corp" in hidden
    assert f'href="{oauth.url}/orgs/secret-corp/sso"' in hidden
    assert f'value="{oauth.org("secret-corp").id}"' not in page
    assert ">secret-corp</button>" not in page
    assert f'value="{oauth.org("acme").id}">acme</button>' in page


def test_the_organization_choice_shows_organization_names_escaped():
    organizations = [Organization(id=7, login="acme", name='<img src=x onerror="alert(1)">')]

    page = render_to_string("integrations/select_organization.html", {"organizations": organizations})

    assert "<img" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_the_organization_choice_refuses_an_organization_that_is_not_yours(visitor, charlie, oauth):
    visitor.force_login(charlie)
    visit(visitor, "get", authorize(visitor, oauth))
    visit(visitor, "get", SELECT_ORG)

    response = visit(visitor, "post", SELECT_ORG, {"organization": "424242"})

    assert_problem(response, 400, "not one of your GitHub organizations", back=SELECT_ORG)
    assert not Team.objects.exists()
    assert not GitHubIntegration.objects.exists()


def test_the_choice_is_checked_against_github_when_the_list_was_never_shown(visitor, charlie, oauth):
    visitor.force_login(charlie)
    visit(visitor, "get", authorize(visitor, oauth))

    response = visit(visitor, "post", SELECT_ORG, {"organization": "424242"})

    assert response.status_code == 400
    assert ("GET", "/user/orgs?per_page=100") in oauth.requests
    assert not Team.objects.exists()


def test_github_unavailable_while_listing_organizations_is_a_502_page(visitor, charlie, oauth):
    visitor.force_login(charlie)
    visit(visitor, "get", authorize(visitor, oauth))
    oauth.inject("server_error", times=None)

    response = visit(visitor, "get", SELECT_ORG)

    assert_problem(response, 502, "GitHub did not answer as expected")
    assert not Team.objects.exists()
