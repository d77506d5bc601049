"""Where notifications may go: a server that posts to URLs people type must not be turned against
what only it can reach (SSRF). Checked when the URL is saved and again when each attempt connects
(docs/security.md#notifications). In this process: names resolve through a fake DNS."""

import pytest

from integrations import words
from integrations.models import NotificationDelivery
from integrations.notifications import deliveries
from integrations.notifications.outbox import new_delivery
from integrations.notifications.url_safety import destination_problem
from tests.notifications import endpoint_for, resolve_as

PUBLIC = "93.184.215.14"


@pytest.fixture
def dns(monkeypatch, settings):
    """Production's rule (NOTIFICATIONS_ALLOW_PRIVATE_URLS off), and names that resolve as the test
    says: {name: [addresses]}; an address is looked up as itself, any other name is unknown."""
    settings.NOTIFICATIONS_ALLOW_PRIVATE_URLS = False
    settings.ALLOWED_HOSTS = ["members.example.com", ".example.org"]
    settings.SITE_URL = "https://members.example.com"
    return resolve_as(monkeypatch, {"hooks.example.com": [PUBLIC]})


def test_an_https_url_of_a_public_address_is_allowed(dns):
    assert destination_problem("https://hooks.example.com/member-sync") == ""
    assert destination_problem(f"https://{PUBLIC}:8443/hook") == ""


def test_plain_http_is_refused_in_production(dns):
    assert destination_problem("http://hooks.example.com/member-sync") == words.URL_NOT_HTTPS


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",  # loopback
        "https://127.1.2.3:8443/hook",
        "https://10.0.0.8/hook",  # private
        "https://172.16.5.4/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data/",  # link-local: the cloud's metadata
        "https://100.64.0.1/hook",  # shared (carrier-grade NAT)
        "https://0.0.0.0/hook",  # unspecified
        "https://224.0.0.1/hook",  # multicast
        "https://240.0.0.1/hook",  # reserved
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",  # IPv4 inside IPv6
        "https://[fd00::1]/hook",  # unique local
        "https://[fe80::1]/hook",
        "https://2130706433/hook",  # 127.0.0.1 written as a number
    ],
)
def test_an_internal_address_is_refused(dns, url):
    assert "a private, loopback or otherwise internal address" in destination_problem(url)


def test_a_name_that_resolves_to_a_private_address_is_refused(dns):
    dns["internal.example.com"] = ["10.1.2.3"]

    assert destination_problem("https://internal.example.com/hook") == words.URL_PRIVATE_ADDRESS.format(
        host="internal.example.com", address="10.1.2.3"
    )


def test_every_address_a_name_resolves_to_is_checked(dns):
    dns["split.example.com"] = [PUBLIC, "fd12::7"]

    assert "fd12::7" in destination_problem("https://split.example.com/hook")


def test_a_name_that_does_not_resolve_is_refused(dns):
    assert destination_problem("https://nowhere.invalid/hook") == words.URL_HOST_UNKNOWN.format(host="nowhere.invalid")


@pytest.mark.parametrize(
    "url",
    ["https://members.example.com/github/webhook/", "https://MEMBERS.example.com.:8443/x", "https://a.example.org/"],
)
def test_the_products_own_host_is_refused(dns, url):
    dns["members.example.com"] = dns["a.example.org"] = [PUBLIC]

    assert destination_problem(url) == words.URL_OWN_SITE


def test_a_user_or_password_in_the_url_is_refused(dns):
    assert destination_problem("https://user:password@hooks.example.com/hook") == words.URL_WITH_USERINFO
    assert destination_problem("https://token@hooks.example.com/hook") == words.URL_WITH_USERINFO


@pytest.mark.parametrize("url", ["hooks.example.com/x", "ftp://hooks.example.com/", "https://", "https://h:99999/"])
def test_what_is_no_url_is_refused(dns, url):
    assert destination_problem(url) == words.URL_NOT_VALID


def test_the_setting_allows_plain_http_and_this_machine_but_not_the_site_itself(dns, settings):
    settings.NOTIFICATIONS_ALLOW_PRIVATE_URLS = True
    settings.SITE_URL = "http://127.0.0.1:8000"

    assert destination_problem("http://127.0.0.1:9000/hook") == ""
    assert destination_problem("http://10.0.0.8/hook") == ""
    assert destination_problem("http://127.0.0.1:8000/github/webhook/") == words.URL_OWN_SITE


def test_a_name_that_resolves_to_a_private_address_by_the_time_of_sending_is_refused_without_retries(dns, team):
    endpoint = endpoint_for(team, "https://hooks.example.com/member-sync")  # saved while it was public
    delivery = new_delivery(endpoint, "member_sync.completed", {"team": "acme"})
    dns["hooks.example.com"] = ["127.0.0.1"]  # rebound

    deliveries.deliver_notification.fn(delivery.pk, 0)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        NotificationDelivery.Status.FAILED,
        1,
        None,
    )
    assert "127.0.0.1" in delivery.answer
    assert delivery.history[0]["status_code"] is None


def test_a_url_refused_by_the_rules_of_the_time_of_sending_fails_at_once(dns, team):
    endpoint = endpoint_for(team, "http://hooks.example.com/member-sync")  # saved under DEBUG, say
    delivery = new_delivery(endpoint, "member_sync.completed", {"team": "acme"})

    deliveries.deliver_notification.fn(delivery.pk, 0)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.answer) == (NotificationDelivery.Status.FAILED, words.URL_NOT_HTTPS)
