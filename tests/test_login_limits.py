"""Guessing is slowed down: after a few failed logins a username, and separately a client address,
is refused for a while with a page that says so (django-axes); sign-ups are limited per address."""

import ipaddress
import uuid

import pytest
import requests
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.db.models import F
from pytest_django.asserts import assertContains, assertRedirects

from tests.conftest import PASSWORD
from tests.stack import stack_environment, web_server

LIMIT = 5  # AXES_FAILURE_LIMIT's default: the fifth failure is already answered with the lockout


def log_in(client, username, password, address="198.51.100.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def is_logged_in(client):
    return "_auth_user_id" in client.session


def test_it_locks_out_a_username_after_failures(client, alice, bob):
    for n in range(LIMIT):
        log_in(client, "alice", "wrong", address=f"203.0.113.{n}")

    locked = log_in(client, "alice", PASSWORD, address="203.0.113.99")

    assert locked.status_code == 429
    assert not is_logged_in(client)
    # Only alice is locked, not the address the last attempt came from.
    assertRedirects(log_in(client, "bob", PASSWORD, address="203.0.113.99"), "/", fetch_redirect_response=False)


def test_it_locks_out_an_address_after_failures_with_any_usernames(client, bob):
    for n in range(LIMIT):
        log_in(client, f"nobody{n}", "wrong", address="203.0.113.7")

    assert log_in(client, "bob", PASSWORD, address="203.0.113.7").status_code == 429
    assert not is_logged_in(client)
    assertRedirects(log_in(client, "bob", PASSWORD, address="203.0.113.8"), "/", fetch_redirect_response=False)


def test_the_lockout_is_a_429_page_that_says_to_try_again_later(client, alice):
    for _ in range(LIMIT):
        log_in(client, "alice", "wrong")

    response = log_in(client, "alice", "wrong")

    assertContains(response, "Too many attempts", status_code=429)
    assertContains(response, "Please try again later.", status_code=429)


def test_a_success_forgets_earlier_failures(client, alice):
    for _ in range(LIMIT - 1):
        log_in(client, "alice", "wrong")
    log_in(client, "alice", PASSWORD)
    client.post("/accounts/logout/")

    for _ in range(LIMIT - 1):
        log_in(client, "alice", "wrong")

    assert log_in(client, "alice", PASSWORD).status_code == 302


def test_it_lets_a_username_in_again_after_the_cool_off(client, alice, settings):
    for _ in range(LIMIT):
        log_in(client, "alice", "wrong")
    assert log_in(client, "alice", PASSWORD).status_code == 429

    # The failures as if they had happened one cool-off ago.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME)

    assert log_in(client, "alice", PASSWORD).status_code == 302


class Browser(requests.Session):
    """A client of the real web server, posting forms with their CSRF token."""

    def __init__(self, url):
        super().__init__()
        self.url = url
        self.get(f"{url}/accounts/login/")

    def log_in(self, username, password, forwarded_for):
        return self.post(
            f"{self.url}/accounts/login/",
            data={"username": username, "password": password},
            headers={"X-CSRFToken": self.cookies["csrftoken"], "X-Forwarded-For": forwarded_for},
            allow_redirects=False,
            timeout=10,
        )


@pytest.mark.django_db(transaction=True)
def test_it_counts_the_client_a_proxy_forwards_for_not_the_proxy(bob):
    # The tests connect from 127.0.0.1, the proxy uvicorn trusts by default (FORWARDED_ALLOW_IPS).
    with web_server(stack_environment()) as web:
        browser = Browser(web.url)
        for n in range(LIMIT):
            browser.log_in(f"nobody{n}", "wrong", forwarded_for="203.0.113.7")

        locked = browser.log_in("bob", PASSWORD, forwarded_for="203.0.113.7")
        assert locked.status_code == 429
        assert "Please try again later." in locked.text
        assert browser.log_in("bob", PASSWORD, forwarded_for="203.0.113.8").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_a_client_the_server_does_not_trust_as_a_proxy_cannot_choose_its_address(bob):
    with web_server(stack_environment(FORWARDED_ALLOW_IPS="192.0.2.1")) as web:
        browser = Browser(web.url)
        for n in range(LIMIT):
            browser.log_in(f"nobody{n}", "wrong", forwarded_for=f"203.0.113.{n}")

        assert browser.log_in("bob", PASSWORD, forwarded_for="203.0.113.200").status_code == 429


def unused_address():
    """A client address no other test has used: sign-ups are counted in Redis, for the whole run."""
    return str(ipaddress.IPv6Address(uuid.uuid4().int))


def sign_up(client, username, address, password2="a-long-unusual-pass-41"):
    data = {"username": username, "password1": "a-long-unusual-pass-41", "password2": password2}
    return client.post("/accounts/signup/", data, REMOTE_ADDR=address)


def test_it_limits_sign_up_attempts_per_address(client, db, settings):
    settings.SIGNUP_ATTEMPTS_PER_HOUR = 2
    address = unused_address()
    # Failed attempts count: they are how a script probes for usernames.
    assert sign_up(client, "dana", address, password2="mismatch").status_code == 200
    assert sign_up(client, "dana", address, password2="mismatch").status_code == 200

    refused = sign_up(client, "dana", address)

    assertContains(refused, "Please try again later.", status_code=429)
    assert not get_user_model().objects.filter(username="dana").exists()
    assertRedirects(sign_up(client, "dana", unused_address()), "/onboarding/", fetch_redirect_response=False)


def test_showing_the_sign_up_page_is_not_an_attempt(client, db, settings):
    settings.SIGNUP_ATTEMPTS_PER_HOUR = 1
    address = unused_address()
    for _ in range(3):
        assert client.get("/accounts/signup/", REMOTE_ADDR=address).status_code == 200

    assertRedirects(sign_up(client, "dana", address), "/onboarding/", fetch_redirect_response=False)
