"""Who may say a request's client address and scheme (X-Forwarded-For, X-Forwarded-Proto): only
the proxy in front of the web processes, never a client (docs/deploy.md#trust-boundary). Real
uvicorn and Pushpin processes."""

import pytest
import requests

from tests.helpers import free_port
from tests.stack import own_pushpin, stack_environment, web_server

pytestmark = pytest.mark.django_db(transaction=True)

FORGED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


def https_only_environment(**overrides):
    return stack_environment(METRICS_ALLOWED_IPS="203.0.113.7", HTTPS_ONLY="1", ALLOWED_HOSTS="127.0.0.1", **overrides)


@pytest.mark.services  # uvicorn and Pushpin processes
def test_a_client_cannot_pick_its_address_or_scheme_through_pushpin():
    """Costs a few seconds: a Pushpin and a web server of their own. /metrics answers without a
    token only to METRICS_ALLOWED_IPS, by the address Django derives from X-Forwarded-For; with
    HTTPS_ONLY a request Django believes came over https is not redirected."""
    port = free_port()
    env = https_only_environment()
    with (
        own_pushpin(port) as (pushpin, grip_url),
        web_server({**env, "GRIP_URL": grip_url}, port=port, ready_path="/healthz"),
    ):
        metrics = requests.get(f"{pushpin}/metrics", headers=FORGED, timeout=10, allow_redirects=False)
        page = requests.get(f"{pushpin}/accounts/login/", headers=FORGED, timeout=10, allow_redirects=False)

        assert metrics.status_code != 200, "a forged X-Forwarded-For passed for an allowed address"
        assert page.status_code == 301
        assert page.headers["Location"].startswith("https://")


@pytest.mark.services  # a uvicorn process
def test_a_web_process_trusts_forwarded_headers_only_from_its_proxy():
    """Costs a few seconds: two web servers of their own. The proxy's address (FORWARDED_ALLOW_IPS)
    is one this test does not connect from, then the one it does."""
    with web_server(https_only_environment(FORWARDED_ALLOW_IPS="192.0.2.1"), ready_path="/healthz") as web:
        metrics = requests.get(f"{web.url}/metrics", headers=FORGED, timeout=10, allow_redirects=False)
        page = requests.get(f"{web.url}/accounts/login/", headers=FORGED, timeout=10, allow_redirects=False)

        assert metrics.status_code != 200
        assert page.status_code == 301
        assert page.headers["Location"].startswith("https://")

    with web_server(https_only_environment(FORWARDED_ALLOW_IPS="127.0.0.1"), ready_path="/healthz") as web:
        # From the proxy's address the same headers are the proxy's word, and taken.
        assert requests.get(f"{web.url}/accounts/login/", headers=FORGED, timeout=10).status_code == 200


def test_pushpin_listens_publicly_on_its_http_port_alone():
    import re

    from scripts.stack import pushpin_configuration

    with pushpin_configuration(free_port(), free_port()) as (conf, grip_url):
        text = conf.read_text()

    tcp_listeners = re.findall(r"tcp://([^:]+):", text)
    assert tcp_listeners
    assert set(tcp_listeners) == {"127.0.0.1"}
    assert "push_in_http_addr=127.0.0.1" in text
    assert grip_url.startswith("http://127.0.0.1:")
    assert "x_forwarded_for=truncate:0,append" in text
    assert "accept_x_forwarded_protocol=false" in text
