"""Guessing is slowed down: after a few failed logins a username is refused for a while, from the
client address that failed it, with a page that says so (django-axes); sign-ups are limited per
address. An IPv6 client is its /64, the block a single host or home network is given."""

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


def test_it_locks_out_a_username_at_the_address_that_failed_it(client, alice, bob):
    for _ in range(LIMIT):
        log_in(client, "alice", "wrong", address="203.0.113.7")

    locked = log_in(client, "alice", PASSWORD, address="203.0.113.7")

    assert locked.status_code == 429
    assert not is_logged_in(client)
    # Another user at that address is not locked.
    assertRedirects(log_in(client, "bob", PASSWORD, address="203.0.113.7"), "/", fetch_redirect_response=False)


def test_failing_a_username_from_elsewhere_does_not_lock_its_owner_out(client, alice):
    # Whoever knows an admin's username could otherwise keep them out, from anywhere, for good.
    for n in range(LIMIT):
        log_in(client, "alice", "wrong", address=f"203.0.113.{n}")
    for _ in range(LIMIT):
        log_in(client, "alice", "wrong", address="203.0.113.99")

    assertRedirects(log_in(client, "alice", PASSWORD, address="198.51.100.1"), "/", fetch_redirect_response=False)


def test_an_ipv6_client_is_counted_by_its_64(client, alice):
    # A host given a /64 has 2**64 addresses to choose from: one each per failure would never be locked.
    for n in range(LIMIT):
        log_in(client, "alice", "wrong", address=f"2001:db8:1:2::{n + 1:x}")

    assert log_in(client, "alice", PASSWORD, address="2001:db8:1:2:ffff:ffff:ffff:ffff").status_code == 429
    assertRedirects(log_in(client, "alice", PASSWORD, address="2001:db8:1:3::1"), "/", fetch_redirect_response=False)


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


@pytest.mark.services  # a uvicorn process
@pytest.mark.django_db(transaction=True)
def test_it_counts_the_client_a_proxy_forwards_for_not_the_proxy(bob):
    # The tests connect from 127.0.0.1, the proxy uvicorn trusts by default (FORWARDED_ALLOW_IPS).
    with web_server(stack_environment()) as web:
        browser = Browser(web.url)
        for _ in range(LIMIT):
            browser.log_in("bob", "wrong", forwarded_for="203.0.113.7")

        locked = browser.log_in("bob", PASSWORD, forwarded_for="203.0.113.7")
        assert locked.status_code == 429
        assert "Please try again later." in locked.text
        assert browser.log_in("bob", PASSWORD, forwarded_for="203.0.113.8").status_code == 302


@pytest.mark.services  # a uvicorn process
@pytest.mark.django_db(transaction=True)
def test_a_client_the_server_does_not_trust_as_a_proxy_cannot_choose_its_address(bob):
    with web_server(stack_environment(FORWARDED_ALLOW_IPS="192.0.2.1")) as web:
        browser = Browser(web.url)
        # Each failure from another address it says, all counted as the one it connects from.
        for n in range(LIMIT):
            browser.log_in("bob", "wrong", forwarded_for=f"203.0.113.{n}")

        assert browser.log_in("bob", PASSWORD, forwarded_for="203.0.113.200").status_code == 429


def unused_address():
    """A client address no other test has used: sign-ups are counted in Redis, for the whole run."""
    return str(ipaddress.IPv6Address(uuid.uuid4().int))


def sign_up(client, username, address, password2="a-long-unusual-pass-41"):
    data = {"username": username, "password1": "a-long-unusual-pass-41", "password2": password2}
    return client.post("/accounts/signup/", data, REMOTE_ADDR=address)


@pytest.mark.services  # sign-ups are counted in the Redis cache
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


@pytest.mark.services  # sign-ups are counted in the Redis cache
def test_showing_the_sign_up_page_is_not_an_attempt(client, db, settings):
    settings.SIGNUP_ATTEMPTS_PER_HOUR = 1
    address = unused_address()
    for _ in range(3):
        assert client.get("/accounts/signup/", REMOTE_ADDR=address).status_code == 200

    assertRedirects(sign_up(client, "dana", address), "/onboarding/", fetch_redirect_response=False)
