"""Reconnecting a team whose GitHub token stopped working: an admin goes through GitHub's OAuth
flow again for the team, and the integration gets the new token."""

from django.urls import reverse

from integrations.models import GitHubIntegration
from integrations.views.onboarding import PENDING_SESSION_KEY, STATE_SESSION_KEY
from teams.models import Membership, Team
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
    assert (integration.scope_list, integration.connected_by) == (["read:org"], bob)
    assert Team.objects.count() == 1
    assert PENDING_SESSION_KEY not in visitor.session


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

    response = client.get(CONNECT + "?team=acme")

    assert response.status_code == 403
    assert STATE_SESSION_KEY not in client.session


def test_a_non_member_cannot_learn_the_team_exists(client, charlie, oauth, integration):
    client.force_login(charlie)

    assert client.get(CONNECT + "?team=acme").status_code == 404
    assert client.get(CONNECT + "?team=no-such-team").status_code == 404
