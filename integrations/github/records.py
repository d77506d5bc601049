"""The typed records the GitHub client hands out, and the cleaning every value from GitHub gets.

Values GitHub sends are untrusted, and each is validated here, once, as the record is built. Text
is stripped of control characters and lone surrogates, which PostgreSQL and UTF-8 cannot store and
which have no business in a name; HTML is left as it is, since it is plain text to be escaped where
it is shown. An implausible email or URL becomes empty; an implausible id or login makes the
record unusable.
"""

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

_MAX_TEXT = 1024
_LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
# Character classes rather than unicodedata.category() character by character, which made
# validating a page of members cost milliseconds. Unicode never changes these two categories:
# Cc (controls) and Cs (surrogates).
_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# \s is exactly what str.isspace() calls whitespace.
_SPACE = re.compile(r"\s")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
# Avatar URLs are of this plain form, plausible at a glance: urlsplit() (the full check, which
# also refuses what it cannot split) would cost more than the rest of a member's validation.
_PLAIN_WEB_URL = re.compile(r"https?://[A-Za-z0-9.:-]+(?:[/?#][!-~]*)?")


def _clean_text(value: str) -> str:
    return _CONTROL_OR_SURROGATE.sub("", value)[:_MAX_TEXT]


def is_web_url(value: str) -> bool:
    if len(value) <= 2048 and _PLAIN_WEB_URL.fullmatch(value):
        return True
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "http://[": no URL at all
        return False
    return (
        parts.scheme in ("https", "http")
        and bool(parts.netloc)
        and len(value) <= 2048
        and not _SPACE_OR_CONTROL.search(value)
    )


def _null_to_empty(value):
    return "" if value is None else value


def _login(value: str) -> str:
    if not _LOGIN.fullmatch(value):
        raise ValueError("not a GitHub login")
    return value


def _node_id(value: str) -> str:
    if not 0 < len(value) <= 255 or _CONTROL_OR_SURROGATE.search(value):
        raise ValueError("not a node id")
    return value


def _email(value: str) -> str:
    plausible = "@" in value and len(value) <= 254 and not _SPACE.search(value)
    return value if plausible else ""


def _web_url(value: str) -> str:
    return value if is_web_url(value) else ""


GitHubId = Annotated[int, Field(gt=0, lt=2**63)]
Login = Annotated[str, AfterValidator(_login)]
NodeId = Annotated[str, AfterValidator(_node_id)]
Text = Annotated[str, BeforeValidator(_null_to_empty), AfterValidator(_clean_text)]
Email = Annotated[str, BeforeValidator(_null_to_empty), AfterValidator(_clean_text), AfterValidator(_email)]
WebUrl = Annotated[str, BeforeValidator(_null_to_empty), AfterValidator(_web_url)]


class _Record(BaseModel):
    # strict: a number where a string belongs (or the other way round) is an error, not a conversion.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class OrganizationMember(_Record):
    github_id: GitHubId
    node_id: NodeId
    login: Login
    name: Text = ""
    email: Email = ""
    avatar_url: WebUrl = ""
    role: Literal["admin", "member"]


class MembersPage(_Record):
    members: list[OrganizationMember]
    total: int | None
    end_cursor: str | None
    has_next_page: bool
    # Records GitHub sent in a form that cannot be used: the read is then incomplete, and the sync
    # must not deactivate anyone.
    skipped: int = 0


class Organization(_Record):
    id: GitHubId
    login: Login
    name: Text = ""
    avatar_url: WebUrl = ""


class Viewer(_Record):
    id: GitHubId
    login: Login
    name: Text = ""


class OAuthToken(_Record):
    access_token: str = Field(repr=False, min_length=1)
    token_type: str
    scopes: list[str]
