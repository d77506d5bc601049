"""Error reporting to Sentry, where SENTRY_DSN is set: unhandled errors in views (the Django
integration) and in actors (the Dramatiq one), and every record logged at ERROR, a failed sync among
them (integrations/runs.py logs each). Tokens and email addresses are scrubbed from all it sends."""

import re

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.dramatiq import DramatiqIntegration

FILTERED = "[Filtered]"

SECRETS = re.compile(
    r"""
      \bgh[oprsu]_[A-Za-z0-9]{20,}               # GitHub tokens: OAuth, personal, refresh, server, user
    | \bgithub_pat_[A-Za-z0-9_]{20,}             # GitHub fine-grained personal tokens
    | \bgAAAAA[A-Za-z0-9_=-]{20,}                # Fernet ciphertext: a stored token, encrypted
    | (?<=Bearer\ )[^\s"',;]+                    # whatever an Authorization header carries
    | [A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}  # email addresses
    """,
    re.VERBOSE | re.IGNORECASE,
)


def scrub(value):
    """The value with every secret in its strings (keys included) replaced, however deep."""
    if isinstance(value, str):
        return SECRETS.sub(FILTERED, value)
    if isinstance(value, dict):
        return {scrub(key): scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


def before_send(event, hint):
    # The whole event: messages, exception values, breadcrumbs, extra data, request data, locals.
    return scrub(event)


def options(dsn: str) -> dict:
    return {
        "dsn": dsn,
        "integrations": [DjangoIntegration(), DramatiqIntegration()],
        # send_default_pii is left at its default, off: no user, cookies, sensitive headers or client
        # addresses. (sentry-sdk 2.x deprecates naming it, for its data_collection option.)
        "before_send": before_send,
    }


def init(dsn: str) -> None:
    sentry_sdk.init(**options(dsn))
