"""Error reporting to Sentry, where SENTRY_DSN is set: unhandled errors in views (the Django
integration) and in actors (the Dramatiq one), and every record logged at ERROR, a failed sync among
them (integrations/member_sync/runs.py logs each). Tokens, notification secrets and email addresses
are scrubbed from all it sends, and so are OAuth codes and states, the streams' signed es-meta, JWTs,
private keys and whatever an Authorization header carries."""

import re

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.dramatiq import DramatiqIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

FILTERED = "[Filtered]"

SECRETS = re.compile(
    r"""
      \bgh[oprsu]_[A-Za-z0-9]{20,}               # GitHub tokens: OAuth, personal, refresh, server, user
    | \bgithub_pat_[A-Za-z0-9_]{20,}             # GitHub fine-grained personal tokens
    | \bgAAAAA[A-Za-z0-9_=-]{20,}                # Fernet ciphertext: a stored token, encrypted
    | (?<=Bearer\ )[^\s"',;]+                    # whatever an Authorization header carries
    | (?-i:(?<=Basic\ ))[A-Za-z0-9+/=]{8,}       # (Basic and GitHub's "token" as written, so that the word
    | (?-i:(?<=token\ ))[^\s"',;]{20,}          #  after "basic" or "token" in a message stays)
    | (?<=Authorization:\ )(?!(?:Bearer|Basic|token)\ )[^\s"',;]+  # one written out, whatever its scheme
    | \bwhsec_[A-Za-z0-9+/=]{16,}                # a team's notification secret (Standard Webhooks)
    | \beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?  # JWTs: the App's, es-meta (a JSON header, base64)
    | -----BEGIN[A-Z\ ]*PRIVATE\ KEY-----[\s\S]*?(?:-----END[A-Z\ ]*PRIVATE\ KEY-----|\Z)  # to its end, or the string's
    | [A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}  # email addresses
    """,
    re.VERBOSE | re.IGNORECASE,
)


# In a query string or form body (the request's query_string, a URL in a breadcrumb or message): the
# OAuth callback's code and state, and es-meta, the stream's signed user and channels.
PARAMETERS = re.compile(r"""(?<![^?&;\s"'])((?:code|state|es-meta)=)[^&;\s"'#]+""", re.IGNORECASE)

# The same, as keys of the request's form data (and headers, cookies, extra, breadcrumb data and
# frame variables): sentry-sdk's documented knob, its EventScrubber, with names added to its list.
DENYLIST = [*DEFAULT_DENYLIST, "code", "state", "es-meta", "es_meta", "jwt", "pem", "private_key_pem"]


def scrub(value):
    """The value with every secret in its strings (keys included) replaced, however deep."""
    if isinstance(value, str):
        return PARAMETERS.sub(rf"\1{FILTERED}", SECRETS.sub(FILTERED, value))
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
        # recursive: form data and extra are dictionaries within dictionaries.
        "event_scrubber": EventScrubber(denylist=DENYLIST, recursive=True),
    }


def init(dsn: str) -> None:
    sentry_sdk.init(**options(dsn))
