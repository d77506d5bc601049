"""Reconnecting a team whose GitHub token stopped working: an admin goes through GitHub's OAuth
flow again for the team, and the integration gets the new token."""

import pytest
from django.test import Client
from django.urls import reverse

from integrations.models import ConnectionChange, GitHubIntegration
from integrations.views.onboarding import PENDING_SESSION_KEY, STATE_SESSION_KEY
from teams.models import Membership, Team
from tests.github.helpers import get
from tests.oauth_flow import CONNECT, assert_problem, authorize, visit, with_query

MEMBERS_PAGE = reverse("integrations:github_members", args=["acme"])


def test_an_admin_gets_a_new_token_and_goes_back_to_the_members_page(visitor, bob, oauth, integration, github_token):
    # Another admin than Alice, who connected it: the integration records who reconnected it.
    Membership.objects.filter(user=bob).update(role=Membership.Role.ADMIN)
    visitor.force_login(bob)

    response = visit(visitor, "get", authorize(visitor, oauth, team="acme"))

    assert response.status_code == 302
    assert response["Location"] == MEMBERS_PAGE
    integration = GitHubIntegration.objects.get()
    assert integration.access_token not in ("", github_token)
    assert (integration.scopes, integration.connected_by) == ("read:org", bob)
    assert Team.objects.count() == 1
    assert PENDING_SESSION_KEY not in visitor.session


def test_reconnecting_is_recorded_with_who_reconnected(visitor, bob, oauth, integration, github_token):
    Membership.objects.filter(user=bob).update(role=Membership.Role.ADMIN)
    visitor.force_login(bob)

    visit(visitor, "get", authorize(visitor, oauth, team="acme"))

    change = ConnectionChange.objects.get()
    assert (change.kind, change.by) == ("reconnected", bob)
    assert (change.before, change.after) == (
        "alice's GitHub account (OAuth), reading acme",
        "bob's GitHub account (OAuth), reading acme",
    )


def test_an_account_outside_the_organization_is_refused(visitor, alice, oauth, integration, github_token):
    GitHubIntegration.objects.update(organization_id=1, organization_login="elsewhere")
    visitor.force_login(alice)

    response = visit(visitor, "get", authorize(visitor, oauth, team="acme"))

    assert_problem(response, 400, "does not belong to elsewhere", back=MEMBERS_PAGE)
    assert GitHubIntegration.objects.get().access_token == github_token


def test_a_problem_leads_back_to_the_members_page(visitor, alice, oauth, integration, github_token):
    visitor.force_login(alice)

    response = visit(visitor, "get", with_query(authorize(visitor, oauth, team="acme"), state="forged"))

    assert_problem(response, 400, "does not belong", back=MEMBERS_PAGE)
    assert GitHubIntegration.objects.get().access_token == github_token


def test_a_member_who_is_not_an_admin_cannot_reconnect(client, bob, oauth, integration):
    client.force_login(bob)

    response = client.post(CONNECT, {"team": "acme", "confirm": "replace"})

    assert response.status_code == 403
    assert STATE_SESSION_KEY not in client.session


def test_a_non_member_cannot_learn_the_team_exists(client, charlie, oauth, integration):
    client.force_login(charlie)

    assert client.get(CONNECT + "?team=acme").status_code == 404
    assert client.post(CONNECT, {"team": "no-such-team"}).status_code == 404


# A connection changes only on purpose: a GET shows the button, a POST needs the CSRF token, and
# replacing a team's connection needs the admin's confirmation.


def test_a_cross_site_get_of_connect_github_shows_the_button_and_starts_nothing(client, alice, oauth, integration):
    client.force_login(alice)

    # What an <img src> or a link on another site makes the admin's browser ask for.
    for_a_new_team = client.get(CONNECT, headers={"referer": "https://evil.example/"})
    for_the_team = client.get(CONNECT + "?team=acme", headers={"referer": "https://evil.example/"})

    assert (for_a_new_team.status_code, for_the_team.status_code) == (200, 200)
    assert ">Connect GitHub</button>" in for_a_new_team.content.decode()
    assert STATE_SESSION_KEY not in client.session
    assert PENDING_SESSION_KEY not in client.session


def test_connect_github_posted_without_the_csrf_token_is_refused(alice, oauth, integration):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(CONNECT, {"team": "acme", "confirm": "replace"})

    assert response.status_code == 403
    assert STATE_SESSION_KEY not in client.session


def test_replacing_the_teams_connection_asks_the_admin_to_confirm(visitor, alice, oauth, integration, github_token):
    visitor.force_login(alice)

    unconfirmed = visit(visitor, "post", CONNECT, {"team": "acme"})

    page = unconfirmed.content.decode()
    assert unconfirmed.status_code == 200
    assert "Replace Acme's GitHub connection?" in page
    assert "alice&#x27;s GitHub account (OAuth), reading acme" in page
    assert '<input type="hidden" name="confirm" value="replace">' in page
    assert f'href="{MEMBERS_PAGE}">Cancel</a>' in page
    assert STATE_SESSION_KEY not in visitor.session
    assert GitHubIntegration.objects.get().access_token == github_token


def test_a_connection_made_while_the_admin_was_on_github_is_not_replaced(
    visitor, alice, team, oauth, github, github_token
):
    visitor.force_login(alice)
    callback = authorize(visitor, oauth, team="acme")  # Acme had no connection: nothing to confirm
    # Meanwhile another admin connected it.
    GitHubIntegration.objects.create(team=team, organization_login="acme", organization_id=github.org("acme").id)
    GitHubIntegration.objects.update(encrypted_access_token="")
    kept = GitHubIntegration.objects.get()
    kept.access_token = github_token
    kept.save()

    response = visit(visitor, "get", callback)

    assert_problem(response, 409, "did not confirm replacing it", back=MEMBERS_PAGE)
    assert GitHubIntegration.objects.get().access_token == github_token


# The replaced connection's token is revoked at GitHub, after the commit.


@pytest.mark.django_db(transaction=True)
def test_reconnecting_revokes_the_old_token_at_github(visitor, alice, oauth, integration, github_token):
    visitor.force_login(alice)

    visit(visitor, "get", authorize(visitor, oauth, team="acme"))

    assert [(revoked.token, revoked.kind) for revoked in oauth.tokens.revoked] == [(github_token, "gho")]
    assert get(oauth, "/user", github_token).status_code == 401
    new_token = GitHubIntegration.objects.get().access_token
    assert get(oauth, "/user", new_token).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_github_refusing_the_revocation_does_not_fail_the_reconnection(
    visitor, alice, oauth, integration, github_token, caplog
):
    oauth.inject("server_error", times=None, status=500, path="/applications/")
    visitor.force_login(alice)

    response = visit(visitor, "get", authorize(visitor, oauth, team="acme"))

    assert response["Location"] == MEMBERS_PAGE
    assert GitHubIntegration.objects.get().access_token != github_token
    assert "did not revoke" in caplog.text
    assert github_token not in caplog.text


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("removed", ["the connection", "the team"])
def test_removing_a_connection_revokes_its_token_at_github(oauth, integration, github_token, removed):
    (integration if removed == "the connection" else integration.team).delete()

    assert [(revoked.token, revoked.kind) for revoked in oauth.tokens.revoked] == [(github_token, "gho")]
    assert get(oauth, "/user", github_token).status_code == 401


@pytest.mark.services  # the team page reads its stream's current event id from Redis
def test_admins_read_the_connections_history_on_the_team_page(client, alice, bob, integration):
    ConnectionChange.record(integration, ConnectionChange.Kind.RECONNECTED, by=alice, before="bob's token")
    team_page = reverse("teams:team_home", args=["acme"])
    client.force_login(alice)

    page = client.get(team_page).content.decode()

    history = page.split('id="connection-history"', 1)[1].split("</details>", 1)[0]
    assert '<tr data-kind="reconnected">' in history
    connected_by_alice = "alice&#x27;s GitHub account (OAuth), reading acme"
    assert f"<td>alice</td><td>bob&#x27;s token</td><td>{connected_by_alice}</td>" in history
    client.force_login(bob)
    assert 'id="connection-history"' not in client.get(team_page).content.decode()
