"""GitHub's webhook deliveries: their signature, and the shapes of the events the product applies.

https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries and the
`x-webhooks` payloads in GitHub's OpenAPI description. A body is trusted only once its signature
checks out, and even then only in the shape below: anything else is an event we do not apply.
"""

import hashlib
import hmac
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from integrations.github.schemas import GitHubId, Login, WebUrl


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


class User(_Payload):
    id: GitHubId
    login: Login
    node_id: Annotated[str, Field(max_length=100)] = ""
    avatar_url: WebUrl = ""


class Membership(_Payload):
    role: str
    user: User

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class MemberChange(_Payload):
    """organization.member_added / member_removed"""

    action: Literal["member_added", "member_removed"]
    organization: Account
    membership: Membership


class OrganizationChange(_Payload):
    """organization.renamed (organization.login is the new login) / deleted"""

    action: Literal["renamed", "deleted"]
    organization: Account


class InstallationChange(_Payload):
    """installation.deleted / suspend / unsuspend: the App's installation on an organization."""

    action: Literal["deleted", "suspend", "unsuspend"]
    installation: Installation


Event = MemberChange | OrganizationChange | InstallationChange

# The events the product applies, by X-GitHub-Event and action (docs/architecture.md#webhooks).
_MODELS: dict[tuple[str, str], type[Event]] = {
    ("organization", "member_added"): MemberChange,
    ("organization", "member_removed"): MemberChange,
    ("organization", "renamed"): OrganizationChange,
    ("organization", "deleted"): OrganizationChange,
    ("installation", "deleted"): InstallationChange,
    ("installation", "suspend"): InstallationChange,
    ("installation", "unsuspend"): InstallationChange,
}


class Unusable(Exception):
    """A known event whose body does not have the shape GitHub documents."""


def parse(event: str, payload: dict) -> Event | None:
    """The event to apply, or None for an event or action the product does not apply. Raises
    Unusable, naming where and what (never a value), for a known one in a shape it cannot use."""
    action = payload.get("action")
    model = _MODELS.get((event, action)) if isinstance(action, str) else None
    if model is None:
        return None
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        problems = error.errors(include_input=False, include_url=False)
        listed = [f"{'.'.join(str(part) for part in problem['loc'])}: {problem['type']}" for problem in problems]
        raise Unusable(f"{event}.{action}: {'; '.join(listed[:3])}") from None
