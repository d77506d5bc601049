"""Webhook healing: GitHub never redelivers a failed delivery by itself, so every
GITHUB_WEBHOOK_HEALING_SECONDS one worker asks GitHub for the App's recent deliveries and has each
one that failed sent again, once (docs/architecture.md#webhooks).

GitHub's delivery log lists every attempt, a redelivery as an attempt of its own with the same guid
and `redelivery: true`. So "once" needs no memory of ours: a guid with an attempt that succeeded is
delivered, and one with a redelivery among its attempts was asked for already; only the others are
asked for. Of the workers that look at once, the one that inserts the period's WebhookHealing heals.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from integrations.github import app
from integrations.github.errors import GitHubError
from integrations.github.schemas import HookDelivery
from integrations.models import WebhookHealing

logger = logging.getLogger(__name__)

# GitHub lets the App redeliver a delivery for 3 days: older ones cannot be healed.
REDELIVERY_WINDOW = timedelta(days=3)
# A pass looks a little before the previous one began, for deliveries GitHub logged late.
OVERLAP = timedelta(minutes=5)
# A pass remembers at most this many of its redeliveries (the count says the rest); each team's page
# shows those of its own installation.
REDELIVERED_KEPT = 1000
# A body this server refused as not in its event's shape: the same body would be refused again.
REFUSED = 400


def period() -> timedelta | None:
    seconds = settings.GITHUB_WEBHOOK_HEALING_SECONDS
    return timedelta(seconds=seconds) if seconds > 0 else None


def enabled() -> bool:
    """Healing needs the App (its JWT reads the delivery log) and webhooks coming to this server."""
    return period() is not None and app.configured() and bool(settings.GITHUB_WEBHOOK_SECRET)


def heal_webhooks(*, now: datetime | None = None) -> WebhookHealing | None:
    """One pass, if this period has none yet: the pass's record, or None when there was nothing to do
    here (healing off, or another worker's pass)."""
    every = period()
    if every is None or not enabled():
        return None
    now = now or timezone.now()
    slot = int(now.timestamp() // every.total_seconds())
    if WebhookHealing.objects.filter(slot=slot).exists():
        return None  # the usual case: asked every minute, a pass is due once a period
    try:
        healing = WebhookHealing.objects.create(slot=slot, started_at=now)
    except IntegrityError:
        return None  # this period's pass is another worker's
    # Back to a little before the last pass that read the whole log; without one, as far as GitHub
    # still redelivers.
    previous = WebhookHealing.objects.filter(slot__lt=healing.slot, finished_at__isnull=False, error="").first()
    oldest = now - REDELIVERY_WINDOW
    since = max(previous.started_at - OVERLAP, oldest) if previous else oldest
    try:
        _heal(healing, since=since)
    except GitHubError as error:
        logger.warning("Webhook healing stopped: %s", error)
        healing.error = str(error)
    healing.finished_at = timezone.now()
    healing.save()
    prune_healings()
    return healing


def _heal(healing: WebhookHealing, *, since: datetime) -> None:
    delivered: set[str] = set()
    asked_already: set[str] = set()
    failed: dict[str, HookDelivery] = {}  # guid → its latest failed attempt (the log is newest first)
    for attempt in app.hook_deliveries(since=since):
        healing.deliveries_seen += 1
        if attempt.succeeded:
            delivered.add(attempt.guid)
        elif attempt.redelivery:
            asked_already.add(attempt.guid)
        elif attempt.status_code != REFUSED:
            failed.setdefault(attempt.guid, attempt)
    for guid, attempt in failed.items():
        if guid in delivered or guid in asked_already:
            continue
        app.redeliver(attempt.id)
        healing.redelivered_count += 1
        if len(healing.redelivered) < REDELIVERED_KEPT:
            healing.redelivered.append(
                {
                    "guid": guid,
                    "event": attempt.event,
                    "action": attempt.action or "",
                    "installation_id": attempt.installation_id,
                    "delivered_at": attempt.delivered_at.isoformat(),
                }
            )
    if healing.redelivered_count:
        logger.warning("Webhook healing asked GitHub to redeliver %d failed deliveries", healing.redelivered_count)


@dataclass(frozen=True)
class Healed:
    """What the latest pass did for one installation: what a team's members page says."""

    at: datetime
    error: str
    # "organization.member_removed", … of this installation's deliveries asked for again.
    redelivered: list[str]


def latest_healing(installation_id: int | None) -> Healed | None:
    healing = WebhookHealing.objects.filter(finished_at__isnull=False).first()
    if healing is None or healing.finished_at is None:
        return None
    redelivered = [
        f"{delivery['event']}.{delivery['action']}".rstrip(".")
        for delivery in healing.redelivered
        if delivery.get("installation_id") == installation_id
    ]
    return Healed(at=healing.finished_at, error=healing.error, redelivered=redelivered)


def prune_healings(*, keep: int = 100) -> None:
    """Keep the latest passes only: the page shows one, and a period's row is all the claim needs."""
    oldest_kept = list(WebhookHealing.objects.values_list("slot", flat=True)[keep - 1 : keep])
    if oldest_kept:
        WebhookHealing.objects.filter(slot__lt=oldest_kept[0]).delete()
