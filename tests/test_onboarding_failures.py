"""Every way onboarding can go wrong before an organization is chosen: the callback refuses what it
cannot trust, and steps taken out of order lead back where they belong."""

import pytest
import requests
from django.urls import reverse

from integrations.views.onboarding import STATE_LIFETIME_SECONDS, STATE_SESSION_KEY
from teams.models import Team
from tests.oauth_flow import (
    CALLBACK,
    CONNECT,
    ONBOARDING,
    SELECT_ORG,
    assert_nothing_created,
    assert_problem,
    authorize,
    authorize_page,
    visit,
    with_query,
)


def test_the_callback_refuses_a_wrong_state(visitor, charlie, oauth):
    visitor.force_login(charlie)

    response = visit(visitor, "get", with_query(authorize(visitor, oauth), state="not-the-state"))

    assert_problem(response, 400, "does not belong to the sign-in started here")
    assert_nothing_created(visitor)


def test_the_callback_refuses_a_state_with_characters_a_token_never_has(visitor, charlie, oauth):
    visitor.force_login(charlie)

    response = visit(visitor, "get", with_query(authorize(visitor, oauth), state="é<script>"))

    assert_problem(response, 400, "does not belong to the sign-in started here")
    assert "<script>" not in response.content.decode()


def test_the_callback_refuses_a_reused_state(visitor, charlie, oauth):
    visitor.force_login(charlie)
    callback = authorize(visitor, oauth)
    assert visit(visitor, "get", callback).status_code == 302

    response = visit(visitor, "get", callback)

    assert_problem(response, 400, "was not started here, or was already used")


def test_the_callback_refuses_an_expired_state(visitor, charlie, oauth):
    visitor.force_login(charlie)
    callback = authorize(visitor, oauth)
    session = visitor.session
    session[STATE_SESSION_KEY]["created_at"] -= STATE_LIFETIME_SECONDS + 1
    session.save()

    response = visit(visitor, "get", callback)

    assert_problem(response, 400, "expired")
    assert_nothing_created(visitor)


def test_the_callback_refuses_a_callback_nobody_started(visitor, charlie, oauth):
    visitor.force_login(charlie)

    response = visit(visitor, "get", CALLBACK + "?code=abc&state=xyz")

    assert_problem(response, 400, "was not started here")


def test_the_callback_refuses_access_denied_on_githubs_page(visitor, charlie, oauth):
    visitor.force_login(charlie)
    _, page = authorize_page(visitor)
    cancel = requests.get(oauth.url + page.cancel, allow_redirects=False, timeout=10)
    assert "error=access_denied" in cancel.headers["Location"]

    response = visit(visitor, "get", cancel.headers["Location"])

    assert_problem(response, 400, "GitHub access was not granted")
    assert_nothing_created(visitor)


def test_the_callback_refuses_any_other_error_from_github(visitor, charlie, oauth):
    visitor.force_login(charlie)
    callback = with_query(authorize(visitor, oauth), code=None, error="application_suspended")

    response = visit(visitor, "get", callback)

    assert_problem(response, 400, "GitHub could not complete the sign-in (application_suspended)")


def test_the_callback_refuses_a_missing_code(visitor, charlie, oauth):
    visitor.force_login(charlie)

    response = visit(visitor, "get", with_query(authorize(visitor, oauth), code=None))

    assert_problem(response, 400, "GitHub sent no authorization code")
    assert_nothing_created(visitor)


def test_the_callback_refuses_a_code_github_refuses(visitor, charlie, oauth):
    visitor.force_login(charlie)

    response = visit(visitor, "get", with_query(authorize(visitor, oauth), code="0123456789abcdef0123"))

    assert_problem(response, 400, "authorization code is invalid or has expired")
    assert_nothing_created(visitor)


def test_the_callback_refuses_a_token_without_read_org(visitor, charlie, oauth):
    visitor.force_login(charlie)

    response = visit(visitor, "get", authorize(visitor, oauth, scope="user:email"))

    assert_problem(response, 400, "did not grant the read:org permission")
    assert_nothing_created(visitor)


def test_the_callback_answers_github_unavailable_with_a_502_page(visitor, charlie, oauth):
    visitor.force_login(charlie)
    callback = authorize(visitor, oauth)
    oauth.inject("server_error", times=None, path="/login/oauth/access_token")

    response = visit(visitor, "get", callback)

    assert_problem(response, 502, "GitHub did not answer as expected")
    assert_nothing_created(visitor)


def test_a_user_with_a_team_goes_from_onboarding_to_the_team_page(client, bob, team):
    client.force_login(bob)

    response = client.get(ONBOARDING)

    assert response.status_code == 302
    assert response["Location"] == reverse("teams:team_home", args=["acme"])


def test_the_organization_choice_without_a_token_goes_to_onboarding(visitor, charlie, oauth):
    visitor.force_login(charlie)

    for method in ("get", "post"):
        response = getattr(visitor, method)(SELECT_ORG)
        assert response.status_code == 302
        assert response["Location"] == ONBOARDING
    assert not Team.objects.exists()


@pytest.mark.parametrize("url", [ONBOARDING, CONNECT, CALLBACK + "?code=abc&state=xyz", SELECT_ORG])
def test_anonymous_users_log_in_first(client, db, oauth, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")
