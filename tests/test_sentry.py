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
from integrations import crypto
from integrations.member_sync import tasks
from integrations.member_sync.tasks import sync_github_members
from integrations.models import MemberSyncRun
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
    run, _ = tasks.request_member_sync(integration=integration, trigger=MemberSyncRun.Trigger.MANUAL)

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


class CapturingTransport(sentry_sdk.Transport):
    """Keeps each envelope as the SDK would send it, serialized: the whole pipeline runs (integrations,
    the event scrubber, before_send, serialization), and nothing leaves the machine."""

    def __init__(self):
        super().__init__()
        self.envelopes = []

    def capture_envelope(self, envelope):
        self.envelopes.append(envelope.serialize().decode())


@pytest.fixture
def captured():
    transport = CapturingTransport()
    sentry_sdk.init(**sentry.options("http://public@127.0.0.1:9/1"), transport=transport)
    yield transport
    sentry_sdk.get_client().close(timeout=5)
    # The breadcrumbs stay in the scope: they would be in the next test's reports.
    sentry_sdk.get_isolation_scope().clear_breadcrumbs()
    sentry_sdk.get_global_scope().set_client(None)


# What the GitHub flows and the streams carry that an error report must never hold (module constants,
# for the reason given above TOKEN).
OAUTH_CODE = "oauthcode" + "7e1f0a9b3c"
OAUTH_STATE = "oauthstate" + "Qx4Zp2Lm9N"
APP_JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJpc3MiOiIxMjM0NSIsImV4cCI6MX0" + ".c2lnbmVkLWJ5LXRoZS1hcHA"
ES_META = "eyJhbGciOiJIUzI1NiJ9" + ".eyJ1c2VyIjoiNyIsImNoYW5uZWxzIjpbInRlYW0tMSJdfQ" + ".bWV0YS1zaWduYXR1cmU"
KEY_BODY = "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu" + "KUpRKfFLfRYC9AIK"
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----\n"
INSTALLATION_TOKEN = "ghs_" + "Z9y8X7w6" * 4 + "abcd"
BASIC = "YWxpY2U6" + "aHVudGVyMg=="


@pytest.mark.services  # sentry_sdk.init runs `git rev-parse HEAD` for the release
@pytest.mark.django_db
@pytest.mark.urls("tests.urls")
def test_oauth_codes_stream_meta_jwts_private_keys_and_authorization_are_scrubbed_from_a_report(captured, client):
    client.raise_request_exception = False
    query = f"code={OAUTH_CODE}&state={OAUTH_STATE}&es-meta={ES_META}&lastEventId=team-1:5"
    form = {"code": OAUTH_CODE, "state": OAUTH_STATE, "key": PRIVATE_KEY}

    assert client.post(f"/probe/failing/?{query}", form, HTTP_AUTHORIZATION=f"Basic {BASIC}").status_code == 500
    sentry_sdk.add_breadcrumb(message=f"POST /login/oauth/access_token?code={OAUTH_CODE}&state={OAUTH_STATE}")
    sentry_sdk.add_breadcrumb(message=f"Authorization: Basic {BASIC}; Authorization: token {INSTALLATION_TOKEN}")
    try:
        raise ValueError(f"GitHub refused the App's JWT {APP_JWT} made with {PRIVATE_KEY}")
    except ValueError:
        sentry_sdk.capture_exception()

    sent = "\n".join(captured.envelopes)
    assert len(captured.envelopes) == 2
    assert "the view failed for [Filtered]" in sent  # the view's own report is there, scrubbed
    secrets = {
        "code": OAUTH_CODE,
        "state": OAUTH_STATE,
        "jwt": APP_JWT.split(".")[1],
        "es-meta": ES_META.split(".")[1],
        "private key": KEY_BODY[:40],
        "installation token": INSTALLATION_TOKEN,
        "basic": BASIC,
    }
    assert [name for name, secret in secrets.items() if secret in sent] == []
    # What is not a secret stays, so that the report still says what happened.
    assert "lastEventId=team-1:5" in sent
