"""The team decorators, through real requests: members read, admins act, others see nothing."""

import pytest
from pytest_django.asserts import assertContains, assertRedirects

pytestmark = pytest.mark.urls("tests.urls")


@pytest.mark.services  # the page shows the team's current event id, read from Redis
def test_it_shows_the_team_page_to_a_member(client, bob, team):
    client.force_login(bob)

    assertContains(client.get("/t/acme/"), "Acme")


def test_it_hides_a_team_from_a_non_member_with_404(client, charlie, team):
    client.force_login(charlie)

    assert client.get("/t/acme/").status_code == 404
    assert client.get("/probe/acme/member/").status_code == 404
    assert client.get("/probe/acme/admin/").status_code == 404


def test_it_answers_404_for_a_team_that_does_not_exist(client, alice, team):
    client.force_login(alice)

    assertContains(client.get("/t/no-such-team/"), "Page not found", status_code=404)


def test_it_answers_404_for_a_malformed_slug(client, alice, team):
    client.force_login(alice)

    assert client.get("/t/not a slug!/").status_code == 404


def test_it_sends_anonymous_users_to_login(client, team):
    assertRedirects(client.get("/t/acme/"), "/accounts/login/?next=/t/acme/")


def test_it_sets_request_team_for_members(client, bob, team):
    client.force_login(bob)

    assertContains(client.get("/probe/acme/member/"), "member of acme")


def test_it_requires_admin_for_admin_actions(client, bob, team):
    client.force_login(bob)

    assertContains(client.get("/probe/acme/admin/"), "Only a team admin", status_code=403)


def test_it_lets_admins_do_admin_actions(client, alice, team):
    client.force_login(alice)

    assertContains(client.get("/probe/acme/admin/"), "admin of acme")


def test_admin_rights_do_not_cross_teams(client, charlie, team, other_team):
    client.force_login(charlie)

    assertContains(client.get("/probe/globex/admin/"), "admin of globex")
    assert client.get("/probe/acme/admin/").status_code == 404
