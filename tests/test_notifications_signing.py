"""Notifications are signed as the Standard Webhooks specification says: the `standardwebhooks`
package verifies them as they are, with the secret in its `whsec_<base64>` form
(docs/interfaces.md#notifications)."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from integrations import words
from integrations.notifications.outbox import body_of, run_data
from integrations.notifications.signing import new_secret, secret_problem, signed_headers
from tests.notifications import SECRET


def test_a_signed_body_verifies_with_the_standardwebhooks_package():
    body = '{"type":"member_sync.completed","data":{"team":"acme"}}'

    headers = signed_headers(SECRET, message_id="msg_1", at=timezone.now(), body=body)

    assert Webhook(SECRET).verify(body, headers) == json.loads(body)
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["webhook-id"] == "msg_1"


def test_the_signature_is_the_hmac_of_id_timestamp_and_body_with_the_decoded_secret():
    import hashlib
    import hmac

    at = datetime(2026, 1, 5, 10, 15, 2, tzinfo=UTC)
    headers = signed_headers(SECRET, message_id="msg_2", at=at, body='{"a":1}')

    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = hmac.new(key, f"msg_2.{int(at.timestamp())}.".encode() + b'{"a":1}', hashlib.sha256).digest()
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()


def test_another_secret_or_a_changed_body_does_not_verify():
    body = '{"type":"test","data":{}}'
    headers = signed_headers(SECRET, message_id="msg_3", at=timezone.now(), body=body)

    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace("test", "tost"), headers)


def test_an_attempt_signed_long_ago_is_refused_so_each_attempt_is_signed_anew():
    body = '{"type":"test","data":{}}'
    headers = signed_headers(SECRET, message_id="msg_4", at=timezone.now() - timedelta(minutes=6), body=body)

    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(body, headers)


def test_a_new_secret_is_whsec_and_32_random_bytes_in_base64():
    secrets = {new_secret() for _ in range(5)}

    assert len(secrets) == 5
    for secret in secrets:
        assert secret_problem(secret) == ""
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", words.SIGNING_KEY_FORM),  # no prefix
        ("whsec_not base64!", words.SIGNING_KEY_FORM),
        ("whsec_" + base64.b64encode(b"x" * 23).decode(), words.SIGNING_KEY_LENGTH),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), words.SIGNING_KEY_LENGTH),
        ("whsec_" + base64.urlsafe_b64encode(b"\xfb" * 24).decode(), words.SIGNING_KEY_FORM),  # not standard base64
    ],
)
def test_a_secret_not_in_the_specifications_form_is_refused(secret, problem):
    assert secret_problem(secret) == problem


def test_an_unpadded_secret_is_taken_as_the_package_takes_it():
    unpadded = "whsec_" + base64.b64encode(b"k" * 25).decode().rstrip("=")

    assert secret_problem(unpadded) == ""
    Webhook(unpadded)  # accepted by receivers too


def test_the_body_is_type_timestamp_and_data_in_compact_json():
    at = datetime(2026, 1, 5, 10, 15, 2, 481233, tzinfo=UTC)

    body = body_of("member_sync.failed", {"team": "acme", "run": 7}, at)

    assert (
        body == '{"type":"member_sync.failed","timestamp":"2026-01-05T10:15:02.481233Z","data":{"team":"acme","run":7}}'
    )


def test_without_a_run_the_data_links_the_members_page(settings):
    data = run_data(None, "acme", "acme-org")

    assert data == {
        "team": "acme", "organization": "acme-org", "run": None, "status": None, "error_kind": None,
        "changes": {}, "url": f"{settings.SITE_URL}/t/acme/github/members/",
    }  # fmt: skip


def test_error_reports_are_scrubbed_of_a_secret():
    from config.sentry import scrub

    assert scrub({"message": f"could not save {SECRET}!"}) == {"message": "could not save [Filtered]!"}
