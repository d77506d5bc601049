"""GitHub's webhook deliveries: their signature, and the shapes of the events the product applies.

https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries and the
`x-webhooks` payloads in GitHub's OpenAPI description. A body is trusted only once its signature
checks out, and even then only in the shape below: one that does not fit its header's event is refused.
"""

import hashlib
import hmac
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from integrations.github.schemas import GitHubId, Login, problem_detail


def signature_is_valid(body: bytes, signature: str | None, secret: str) -> bool:
    """Whether `signature` (the X-Hub-Signature-256 header) is GitHub's for this body and secret."""
    if not secret or not signature:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


class _Payload(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class Account(_Payload):
    id: GitHubId
    login: Login


class Installation(_Payload):
    id: GitHubId


class User(Account):
    """Whom a member event is about: the rest of the member is read from GitHub."""


class Membership(_Payload):
    # None: the account was deleted since (GitHub's "ghost"), and the delivery cannot say who it was.
    user: User | None


class MemberChange(_Payload):
    """organization.member_added / member_removed: a hint of whom to look at, not what to write."""

    action: Literal["member_added", "member_removed"]
    organization: Account
    membership: Membership


class OrganizationChange(_Payload):
    """organization.renamed (organization.login is the new login) / deleted"""

    action: Literal["renamed", "deleted"]
    organization: Account


class InstallationChange(_Payload):
    """installation.deleted / suspend / unsuspend / new_permissions_accepted, of the App's installation."""

    action: Literal["deleted", "suspend", "unsuspend", "new_permissions_accepted"]
    installation: Installation


Event = MemberChange | OrganizationChange | InstallationChange

# Each event the product knows: its documented actions and top-level keys, from the `x-webhooks` of
# GitHub's OpenAPI description (tests/vendor/github/webhooks.*.json, which a test compares with these).
# A body with another action or key is another event's under this header (a `team` event's `deleted`
# sent as `organization`) and is refused, never read as this one.
KNOWN_EVENTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "organization": (
        frozenset({"deleted", "member_added", "member_invited", "member_removed", "renamed"}),
        frozenset(
            {
                "action",
                "changes",
                "enterprise",
                "installation",
                "invitation",
                "membership",
                "organization",
                "repository",
                "sender",
                "user",
            }
        ),  # fmt: skip
    ),
    "installation": (
        frozenset({"created", "deleted", "new_permissions_accepted", "suspend", "unsuspend"}),
        frozenset(
            {
                "action",
                "enterprise",
                "installation",
                "organization",
                "repositories",
                "repository",
                "requester",
                "sender",
            }
        ),  # fmt: skip
    ),
}

# The events the product applies, by X-GitHub-Event and action (docs/architecture.md#webhooks).
_MODELS: dict[tuple[str, str], type[Event]] = {
    ("organization", "member_added"): MemberChange,
    ("organization", "member_removed"): MemberChange,
    ("organization", "renamed"): OrganizationChange,
    ("organization", "deleted"): OrganizationChange,
    ("installation", "deleted"): InstallationChange,
    ("installation", "suspend"): InstallationChange,
    ("installation", "unsuspend"): InstallationChange,
    ("installation", "new_permissions_accepted"): InstallationChange,
}


class Unusable(Exception):
    """A body that does not have the shape GitHub documents for the event its header names."""


def parse(event: str, payload: dict) -> Event | None:
    """The event to apply, or None for an event or action the product does not apply. Raises
    Unusable, naming where and what (never a value), for a body that does not fit its event."""
    action = payload.get("action")
    if event in KNOWN_EVENTS:
        actions, keys = KNOWN_EVENTS[event]
        if not isinstance(action, str) or action not in actions:
            raise Unusable(f"{event}: action: not one of the event's actions")
        if unknown := sorted(set(payload) - keys):
            raise Unusable(f"{event}.{action}: {', '.join(unknown)[:200]}: not a field of the event")
    model = _MODELS.get((event, action)) if isinstance(action, str) else None
    if model is None:
        return None
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise Unusable(problem_detail(error, f"{event}.{action}")) from None
