"""Standard Webhooks signing (https://www.standardwebhooks.com): the secret's form, and the headers
of one attempt, signed by the `standardwebhooks` package that receivers verify with."""

import base64
import binascii
import secrets
from datetime import datetime

from standardwebhooks import Webhook

from integrations import words

PREFIX = "whsec_"
# The specification asks for 24 to 64 random bytes; a new secret has 32.
MIN_KEY_BYTES, MAX_KEY_BYTES, NEW_KEY_BYTES = 24, 64, 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(NEW_KEY_BYTES)).decode()


def secret_problem(secret: str) -> str:
    """What is wrong with a secret a person typed, or "" when it is one: `whsec_` then the standard
    base64 of 24 to 64 bytes (padded or not)."""
    if not secret.startswith(PREFIX):
        return words.SIGNING_KEY_FORM
    encoded = secret[len(PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return words.SIGNING_KEY_FORM
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        return words.SIGNING_KEY_LENGTH
    return ""


def signed_headers(secret: str, *, message_id: str, at: datetime, body: str) -> dict[str, str]:
    """The headers of one attempt: its own timestamp (receivers refuse one more than five minutes
    old, so each attempt is signed anew), the message's id, and the signature of "id.timestamp.body"."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
        "content-type": "application/json",
    }
