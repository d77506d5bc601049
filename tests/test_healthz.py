"""/healthz: a cheap liveness answer for anyone; for an operator (an address in METRICS_ALLOWED_IPS or
the metrics token, as /metrics) the readiness detail, the database, both Redis and the broker, each
checked for real. The test client connects from 127.0.0.1, one of METRICS_ALLOWED_IPS' defaults."""

import subprocess

import pytest
from django.db import connection, connections

from ops import healthz
from tests.helpers import free_port, wait_for

# On PostgreSQL too (.ci/run): the database probe, with PostgreSQL's pool. Redis checked for real.
pytestmark = [pytest.mark.postgres, pytest.mark.services]

ELSEWHERE = "203.0.113.9"


def test_it_answers_200_when_every_part_answers(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok", "broker": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_it_answers_503_naming_redis_when_redis_is_down(client, db, settings):
    settings.REDIS_URL = settings.EVENTS_REDIS_URL = f"redis://:secret-password@127.0.0.1:{free_port()}/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "redis": "error: ConnectionError", "broker": "ok"}
    assert b"secret-password" not in response.content


def test_it_checks_the_events_redis_when_it_is_another(client, db, settings):
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
    )
    try:
        settings.EVENTS_REDIS_URL = f"redis://127.0.0.1:{port}/0"
        wait_for(lambda: client.get("/healthz").status_code == 200, timeout=10, message="the events Redis")
        assert client.get("/healthz").json()["events_redis"] == "ok"
    finally:
        server.terminate()
        server.wait()

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["events_redis"] == "error: ConnectionError"


def test_it_answers_503_naming_the_database_when_it_cannot_be_opened(client, db, monkeypatch, tmp_path):
    # The check opens a connection of its own, in a thread of its own, from these settings (without
    # the PostgreSQL pool, which was opened with the good ones).
    default = connections.settings["default"]
    missing = "no_such_database" if connection.vendor == "postgresql" else str(tmp_path / "missing" / "db.sqlite3")
    monkeypatch.setitem(default, "OPTIONS", {key: value for key, value in default["OPTIONS"].items() if key != "pool"})
    monkeypatch.setitem(default, "NAME", missing)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "error: OperationalError"


@pytest.mark.parametrize("host", ["10.0.0.7", "10.0.0.7:8000"])
def test_it_answers_a_probe_by_address_over_plain_http(client, db, settings, host):
    # What a load balancer sends: its own idea of the Host, no X-Forwarded-Proto.
    settings.SECURE_SSL_REDIRECT = True

    response = client.get("/healthz", HTTP_HOST=host)

    assert response.status_code == 200


def test_it_needs_no_login_and_sets_no_cookie(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert not response.cookies


def test_it_refuses_a_post(client, db):
    assert client.post("/healthz").status_code == 405


@pytest.fixture
def checks_forbidden(monkeypatch):
    """Any check of a part fails the test: a liveness answer must not cost a connection."""

    def check_ran():
        pytest.fail("a part was checked")

    monkeypatch.setattr(healthz, "parts", check_ran)


def test_anyone_else_gets_ok_without_any_check(client, checks_forbidden):
    # Anyone may probe, as often as they like: each readiness probe costs a database connection and
    # three Redis round trips, and its detail says which part of the deployment is down.
    response = client.get("/healthz", REMOTE_ADDR=ELSEWHERE)

    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Content-Type"].startswith("text/plain")
    assert response["Cache-Control"] == "no-store"


def test_anyone_else_gets_ok_while_redis_is_down(client, db, settings):
    settings.REDIS_URL = settings.EVENTS_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = client.get("/healthz", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer wrong")

    assert (response.status_code, response.content) == (200, b"ok\n")
    assert client.get("/healthz").status_code == 503


def test_the_metrics_token_gets_the_readiness_detail_from_anywhere(client, db, settings):
    settings.METRICS_TOKEN = "scrape-token"

    response = client.get("/healthz", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer scrape-token")

    assert response.json() == {"database": "ok", "redis": "ok", "broker": "ok"}


def test_an_address_in_metrics_allowed_ips_gets_the_readiness_detail(client, db, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]

    assert client.get("/healthz", REMOTE_ADDR="10.1.2.3").json()["database"] == "ok"
    assert client.get("/healthz", REMOTE_ADDR="127.0.0.1").content == b"ok\n"
