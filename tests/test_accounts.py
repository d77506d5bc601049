"""Sign-up, log-in and log-out: Django's forms, and where each lands."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from pytest_django.asserts import assertContains, assertRedirects

from tests.conftest import PASSWORD

User = get_user_model()
NEW_PASSWORD = "a-long-unusual-pass-41"


@pytest.mark.services  # sign-ups are counted in the Redis cache
def test_it_signs_up_logs_in_and_lands_on_onboarding(client, db):
    response = client.post(
        "/accounts/signup/", {"username": "dana", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assertRedirects(response, "/onboarding/")
    assertContains(client.get("/onboarding/"), "Welcome, dana")


@pytest.mark.services  # sign-ups are counted in the Redis cache
def test_it_keeps_the_email_address_given_at_sign_up(client, db):
    client.post(
        "/accounts/signup/",
        {"username": "dana", "email": "dana@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert User.objects.get(username="dana").email == "dana@example.com"


@pytest.mark.services  # sign-ups are counted in the Redis cache
def test_it_refuses_an_email_address_that_is_not_one(client, db):
    response = client.post(
        "/accounts/signup/", {"username": "dana", "email": "dana", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assertContains(response, "Enter a valid email address.")
    assert not User.objects.filter(username="dana").exists()


@pytest.mark.services  # sign-ups are counted in the Redis cache
def test_it_refuses_a_duplicate_username_with_the_form_error(client, alice):
    response = client.post(
        "/accounts/signup/", {"username": "alice", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assertContains(response, "A user with that username already exists.")
    assert User.objects.filter(username="alice").count() == 1


@pytest.mark.services  # sign-ups are counted in the Redis cache
def test_it_refuses_mismatched_passwords(client, db):
    response = client.post("/accounts/signup/", {"username": "dana", "password1": NEW_PASSWORD, "password2": "other"})

    assert response.status_code == 200
    assert not User.objects.filter(username="dana").exists()


@pytest.mark.services  # sign-ups are counted in the Redis cache
def test_it_refuses_an_empty_form(client, db):
    assertContains(client.post("/accounts/signup/", {}), "This field is required.")


def test_it_refuses_a_wrong_password(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})

    assertContains(response, "Please enter a correct username and password.")
    assert "_auth_user_id" not in client.session


@pytest.mark.services  # the page shows the team's current event id, read from Redis
def test_it_sends_a_user_with_a_team_to_the_team_page(client, bob, team):
    response = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD}, follow=True)

    assertRedirects(response, "/t/acme/")


def test_it_sends_a_user_without_a_team_to_onboarding(client, charlie):
    response = client.post("/accounts/login/", {"username": "charlie", "password": PASSWORD}, follow=True)

    assertRedirects(response, "/onboarding/")


def test_onboarding_requires_login(client, db):
    assertRedirects(client.get("/onboarding/"), "/accounts/login/?next=/onboarding/")


def test_it_logs_out_with_a_post(client, alice):
    client.force_login(alice)

    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


@pytest.mark.postgres  # accounts/sessions.py reads the session with SQL written out
def test_a_session_is_read_until_it_expires(client, alice):
    client.force_login(alice)
    assertContains(client.get("/onboarding/"), "Welcome, alice")

    Session.objects.update(expire_date=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))

    assertRedirects(client.get("/onboarding/"), "/accounts/login/?next=/onboarding/")
