"""GitHub's webhook deliveries: received by the view, applied by an actor
(docs/architecture.md#webhooks).

Receiving is quick, as GitHub waits at most 10 s: check the signature and the shape, remember the
delivery id (so a delivery sent again is applied once), note the delivery on the integrations it
names, and enqueue the change. The actor then applies it: a member added or removed as a run with
trigger `webhook`, an organization renamed or deleted, an App installation deleted or suspended.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic_core import from_json

from integrations.github.webhooks import (
    Event,
    InstallationChange,
    MemberChange,
    OrganizationChange,
    Unusable,
    User,
    parse,
    signature_is_valid,
)
from integrations.models import GitHubIntegration, GitHubMember, WebhookDelivery, max_length
from integrations.runs import run_webhook_change
from integrations.sync import SyncResult

logger = logging.getLogger(__name__)

# A delivery id is remembered at least a day (pruned when the actor applies a delivery): a delivery
# GitHub sends again meanwhile is answered and not applied twice. GitHub redelivers a failed
# delivery only when asked, up to days later; one whose id was forgotten is applied again, like any
# late delivery, and the next full sync corrects what it left wrong (docs/architecture.md#webhooks).
DELIVERIES_KEPT = timedelta(days=1)

NOT_CONFIGURED = "Webhooks are not configured on this server (no GITHUB_WEBHOOK_SECRET)."


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


def receive(*, body: bytes, signature: str | None, event: str, delivery_id: str) -> Answer:
    """Check one delivery and, if it is one to apply, record it and enqueue it."""
    if not settings.GITHUB_WEBHOOK_SECRET:
        # 401 rather than 503: without a secret no signature can be right, and GitHub's delivery
        # log shows this text to whoever set the webhook up.
        logger.warning("Refused a webhook delivery: GITHUB_WEBHOOK_SECRET is not set")
        return Answer(401, NOT_CONFIGURED)
    if not signature_is_valid(body, signature, settings.GITHUB_WEBHOOK_SECRET):
        return Answer(401, "The signature (X-Hub-Signature-256) is missing or wrong.")
    try:
        payload = from_json(body)  # pydantic's parser: a nesting too deep is an error, not a crash
    except ValueError:
        return Answer(400, "The body is not JSON.")
    if not isinstance(payload, dict):
        return Answer(400, "The body is not a JSON object.")
    if event == "ping":
        return Answer(200, "pong")
    try:
        change = parse(event, payload)
    except Unusable as problem:
        logger.warning("Ignored webhook delivery %r, not in GitHub's shape: %s", delivery_id[:100], problem)
        return Answer(200, "Ignored: not in the shape GitHub documents.")
    if change is None:
        return Answer(200, "Ignored: an event this server does not apply.")
    if not 0 < len(delivery_id) <= max_length(WebhookDelivery, "delivery_id"):
        return Answer(400, "The delivery id (X-GitHub-Delivery) is missing or too long.")
    answer = _record(change, event=event, delivery_id=delivery_id)
    if answer.status != 202:
        return answer
    # After the commit, so that a redelivery sent once the message is out finds the delivery id.
    try:
        _enqueue(event, change, delivery_id)
    except Exception:
        logger.exception("Could not enqueue webhook delivery %r", delivery_id)
        # Forgotten, so that GitHub's redelivery is applied rather than answered "already received".
        WebhookDelivery.objects.filter(delivery_id=delivery_id).delete()
        return Answer(503, "The queue is unavailable; redeliver this in a minute.")
    return answer


def _record(change: Event, *, event: str, delivery_id: str) -> Answer:
    with transaction.atomic():
        try:
            with transaction.atomic():
                WebhookDelivery.objects.create(delivery_id=delivery_id, event=event)
        except IntegrityError:
            return Answer(200, "Already received.")
        if not matching(change).update(last_webhook_at=timezone.now()):
            # Not remembered: only applied deliveries are, and the actor prunes them.
            transaction.set_rollback(True)
            return Answer(200, "Ignored: no team here connected this organization.")
    return Answer(202, "Accepted.")


def _enqueue(event: str, change: Event, delivery_id: str) -> None:
    from integrations.tasks import apply_github_webhook  # the actor applies through this module

    apply_github_webhook.send(event, change.model_dump(mode="json"), delivery_id)


def matching(change: Event):
    """The integrations a change is for: an organization's by its numeric id, which survives a
    rename (never its login), however it was connected; an installation's by the installation id."""
    if isinstance(change, InstallationChange):
        return GitHubIntegration.objects.filter(installation_id=change.installation.id)
    return GitHubIntegration.objects.filter(organization_id=change.organization.id)


def apply(event: str, payload: dict) -> None:
    """Apply a delivery the view accepted (the actor's work)."""
    prune_deliveries()
    try:
        change = parse(event, payload)
    except Unusable as problem:
        logger.warning("Ignored a webhook change not in GitHub's shape: %s", problem)
        return
    if isinstance(change, MemberChange):
        # A disconnected integration is no longer kept in sync.
        for integration in matching(change).filter(disconnected_at__isnull=True):
            apply_member_change(integration, change)
    elif isinstance(change, OrganizationChange):
        _apply_organization_change(change)
    elif isinstance(change, InstallationChange):
        _apply_installation_change(change)


def prune_deliveries() -> int:
    """Forget deliveries older than DELIVERIES_KEPT: one indexed DELETE."""
    deleted, _ = WebhookDelivery.objects.filter(received_at__lt=timezone.now() - DELIVERIES_KEPT).delete()
    return deleted


def apply_member_change(integration: GitHubIntegration, change: MemberChange):
    """A member added or removed, as a run with trigger `webhook` (see runs.run_webhook_change)."""
    user, role = change.membership.user, _role(change)
    if change.action == "member_added":
        return run_webhook_change(integration=integration, apply=lambda: _add_member(integration, user, role))
    return run_webhook_change(integration=integration, apply=lambda: _remove_member(integration, user))


def _role(change: MemberChange) -> str:
    return GitHubMember.Role.ADMIN if change.membership.role == "admin" else GitHubMember.Role.MEMBER


_AVATAR_URL_MAX = max_length(GitHubMember, "avatar_url")


def _profile(user: User, role: str) -> dict:
    # The payload names no name or email: a stored member keeps theirs.
    avatar_url = user.avatar_url if len(user.avatar_url) <= _AVATAR_URL_MAX else ""
    return {"login": user.login, "node_id": user.node_id, "avatar_url": avatar_url, "role": role}


def _result(**counts) -> SyncResult:
    return SyncResult(**{"created": 0, "updated": 0, "deactivated": 0, "unchanged": 0, **counts}, total=1, api_calls=0)


def _add_member(integration, user: User, role: str) -> SyncResult:
    """Create the member, or bring them back and refresh their profile. webhook_changed_at marks the
    change, so that a full sync that began reading before it keeps it."""
    now = timezone.now()
    profile = _profile(user, role)
    for _attempt in range(2):
        with transaction.atomic():
            member = GitHubMember.objects.select_for_update().filter(integration=integration, github_id=user.id).first()
            if member is None:
                try:
                    with transaction.atomic():
                        GitHubMember.objects.create(
                            integration=integration, github_id=user.id, **profile,
                            is_active=True, first_seen_at=now, updated_at=now, webhook_changed_at=now,
                        )  # fmt: skip
                except IntegrityError:
                    continue  # stored meanwhile (a full sync's insert): update it instead
                return _result(created=1)
            # An empty node id or avatar in the payload does not erase the stored one.
            profile = {field: value for field, value in profile.items() if value}
            changed = not member.is_active or any(getattr(member, field) != value for field, value in profile.items())
            for field, value in profile.items():
                setattr(member, field, value)
            member.is_active, member.left_at, member.deactivation_held_at = True, None, None
            member.webhook_changed_at = now
            if changed:
                member.updated_at = now
            member.save()
            return _result(updated=1) if changed else _result(unchanged=1)
    raise IntegrityError(f"Member {user.id} could be neither created nor found")


def _remove_member(integration, user: User) -> SyncResult:
    """Mark the member inactive, never delete them. One not stored yet is stored as having left, so
    that a full sync that read them before they left does not add them."""
    now = timezone.now()
    left = {"is_active": False, "left_at": now, "updated_at": now, "deactivation_held_at": None}
    members = GitHubMember.objects.filter(integration=integration, github_id=user.id)
    with transaction.atomic():
        if members.filter(is_active=True).update(**left, webhook_changed_at=now):
            return _result(deactivated=1)
        if members.update(webhook_changed_at=now):
            return _result(unchanged=1)
        GitHubMember.objects.bulk_create(
            [GitHubMember(integration=integration, github_id=user.id, **_profile(user, "member"), **left,
                          first_seen_at=now, webhook_changed_at=now)],
            ignore_conflicts=True,
        )  # fmt: skip
    return _result(unchanged=1)


def _apply_organization_change(change: OrganizationChange) -> None:
    organization = change.organization
    integrations = matching(change)
    if change.action == "renamed":
        integrations.update(organization_login=organization.login)
        return
    integrations.filter(disconnected_at__isnull=True).update(
        disconnected_at=timezone.now(),
        disconnected_reason=f"The GitHub organization {organization.login} was deleted.",
    )


def _apply_installation_change(change: InstallationChange) -> None:
    integrations = matching(change)
    now = timezone.now()
    if change.action == "suspend":
        integrations.filter(installation_suspended_at__isnull=True).update(installation_suspended_at=now)
    elif change.action == "unsuspend":
        integrations.update(installation_suspended_at=None)
    else:
        for integration in integrations.filter(disconnected_at__isnull=True):
            GitHubIntegration.objects.filter(pk=integration.pk, disconnected_at__isnull=True).update(
                disconnected_at=now,
                disconnected_reason=(
                    f"The GitHub App was uninstalled from {integration.organization_login}. "
                    "Install it again to keep members in sync."
                ),
            )
