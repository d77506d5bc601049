"""Error reporting, over real HTTP: a Sentry of the test's own receives the envelopes the SDK sends,
initialised as settings initialise it where SENTRY_DSN is set."""

import gzip
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
from django.conf import settings

from config import sentry
from integrations import crypto, runs
from integrations.models import MemberSyncRun
from integrations.tasks import sync_github_members
from tests.helpers import wait_for


class FakeSentry(ThreadingHTTPServer):
    """Keeps the events of every envelope POSTed to /api/<project>/envelope/."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _EnvelopeHandler)
        self.bodies = []
        self.events = []


class _EnvelopeHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert self.path.endswith("/envelope/"), self.path
        text = body.decode()
        self.server.bodies.append(text)
        # An envelope is a header line, then an item header line and its payload line, for each item.
        lines = text.splitlines()
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                self.server.events.append(json.loads(payload))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def sentry_server():
    server = FakeSentry()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sentry_sdk.init(**sentry.options(f"http://public@127.0.0.1:{server.server_port}/1"))
    yield server
    sentry_sdk.get_client().close(timeout=5)
    # Off again for the tests that follow (the integrations, once set up, stay but do nothing).
    sentry_sdk.get_global_scope().set_client(None)
    server.shutdown()
    server.server_close()


def events_arrived(server, predicate):
    sentry_sdk.flush(timeout=5)
    return wait_for(lambda: [event for event in server.events if predicate(event)], timeout=10, message="events")


def test_it_is_off_without_a_dsn():
    assert settings.SENTRY_DSN == ""
    assert not sentry_sdk.get_client().is_active()


@pytest.mark.django_db(transaction=True)
def test_a_failed_sync_reaches_sentry_naming_the_run(sentry_server, integration, broker, github):
    github.inject("bad_credentials", times=None)
    run, _ = runs.request_member_sync(integration=integration, trigger=MemberSyncRun.Trigger.MANUAL)

    sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert run.status == MemberSyncRun.Status.ERROR
    (event,) = events_arrived(sentry_server, lambda event: "failed" in event.get("logentry", {}).get("formatted", ""))
    assert f"Member sync run {run.pk} of team {integration.team_id} failed" in event["logentry"]["formatted"]
    assert "Reconnect GitHub" in event["logentry"]["formatted"]
    assert event["level"] == "error"
    assert (event["extra"]["run_id"], event["extra"]["team_id"]) == (run.pk, integration.team_id)
    assert "user" not in event


# Module constants: the frames the SDK sends (their variables, their source lines) must hold the
# secrets only where the product could, or the test would find the ones it wrote itself.
TOKEN = "gho_" + "A1b2C3d4" * 4 + "e5f6"
PAT = "github_pat_11ABCDEFG0" + "123456789_abcdefghijklmnopqrstuvwxyz"
BEARER = "s3cr3t-" + "bearer-value"


def report_secrets(ciphertext):
    sentry_sdk.add_breadcrumb(message=f"Authorization: Bearer {BEARER} for {PAT}")
    sentry_sdk.set_extra("stored", {"token": ciphertext, "owner": "bob@example.org"})
    logging.getLogger("integrations").error("Token %s of alice@example.com was refused", TOKEN)
    try:
        raise ValueError(f"bad token {TOKEN} for alice@example.com")
    except ValueError:
        sentry_sdk.capture_exception()


def test_tokens_and_email_addresses_are_scrubbed_from_everything_sent(sentry_server):
    ciphertext = crypto.encrypt(TOKEN)

    report_secrets(ciphertext)

    (exception,) = events_arrived(sentry_server, lambda event: "exception" in event)
    events_arrived(sentry_server, lambda event: "logentry" in event)
    sent = "\n".join(sentry_server.bodies)
    secrets = {"token": TOKEN, "pat": PAT, "bearer": BEARER, "ciphertext": ciphertext, "email": "@example."}
    assert [name for name, secret in secrets.items() if secret in sent] == []
    assert exception["exception"]["values"][-1]["value"] == "bad token [Filtered] for [Filtered]"
    assert exception["extra"]["stored"] == {"token": "[Filtered]", "owner": "[Filtered]"}
    crumbs = [crumb.get("message", "") for crumb in exception["breadcrumbs"]["values"]]
    assert "Authorization: Bearer [Filtered] for [Filtered]" in crumbs


@pytest.mark.django_db
@pytest.mark.urls("tests.urls")
def test_an_unhandled_error_in_a_view_reaches_sentry(sentry_server, client):
    client.raise_request_exception = False

    assert client.get("/probe/failing/").status_code == 500

    (event,) = events_arrived(sentry_server, lambda event: "exception" in event)
    assert event["exception"]["values"][-1]["value"] == "the view failed for [Filtered]"
    assert event["exception"]["values"][-1]["mechanism"]["type"] == "django"
