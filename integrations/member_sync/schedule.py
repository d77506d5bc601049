"""The scheduled full re-sync, every MEMBER_SYNC_EVERY_SECONDS
(docs/interfaces.md#runs-states-and-triggers).

Each integration is due at most one period after its last full sync started (runs.py moves
next_full_sync_at as a run starts, so Sync Now postpones it); one never scheduled is given a time
fixed by its id, so that ten thousand of them are spread over the period rather than all due at once.

Every worker process looks for due integrations every MEMBER_SYNC_SCHEDULE_CHECK_SECONDS and claims
them in the database, in one transaction per batch: it reads due ids (FOR UPDATE SKIP LOCKED on
PostgreSQL; SQLite's BEGIN IMMEDIATE already admits one writer at a time), moves them a period on
with a conditional UPDATE whose row count must match, and inserts their runs. Another worker either
skips those rows or finds them no longer due, so no integration is queued twice.

Why this and not a scheduler made for Dramatiq (dramatiq-crontab, periodiq): both run a scheduler
process of their own (`manage.py crontab`, `periodiq`) that `make run`, `make cluster` and every
deployment would have to start and keep to a single instance, and both only fire a job on a clock;
that job would still have to find the due integrations and claim them as here. The claim is the
hard part and lives in the database either way; the clock is the thread the workers already run
for the stalled-run check.
"""

import logging
import math
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, DateTimeField, Exists, OuterRef, Q, Value, When
from django.utils import timezone

from integrations.github import app
from integrations.github.errors import GitHubError
from integrations.member_sync import tasks
from integrations.member_sync.webhooks import disconnect_uninstalled
from integrations.models import ACTIVE_SYNC_STATUSES, GitHubIntegration, MemberSyncRun

logger = logging.getLogger(__name__)

# Integrations claimed and queued per transaction: a few statements each, whatever the batch.
BATCH_SIZE = 500

# Fibonacci hashing: ids times the golden ratio's fraction land far apart, and consecutive ids
# together fill the period evenly.
_GOLDEN_FRACTION = (math.sqrt(5) - 1) / 2
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class ClaimLost(Exception):
    """Rows read as due were not all claimed: the database neither locked them nor serialized the
    writers. The batch is rolled back, so nothing is queued twice; the next pass tries again."""


def period() -> timedelta | None:
    seconds = settings.MEMBER_SYNC_EVERY_SECONDS
    return timedelta(seconds=seconds) if seconds > 0 else None


def first_full_sync_at(integration_id: int, now: datetime, every: timedelta) -> datetime:
    """When an integration never scheduled is first due: a point of the coming period fixed by its id."""
    offset = every * ((integration_id * _GOLDEN_FRACTION) % 1)
    window_start = now - (now - _EPOCH) % every
    due = window_start + offset
    return due if due > now else due + every


def can_sync():
    """Integrations whose connection works (not disconnected by GitHub, not suspended, with an
    installation or a token): a run of any other could only fail. It is due again once connected."""
    oauth_with_token = Q(connection=GitHubIntegration.Connection.OAUTH) & ~Q(encrypted_access_token="")
    installed_app = Q(connection=GitHubIntegration.Connection.APP, installation_id__isnull=False)
    return Q(disconnected_at__isnull=True, installation_suspended_at__isnull=True) & (oauth_with_token | installed_app)


def queue_due_full_syncs(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """One pass of the schedule: queue a `schedule` run for every due integration; return how many."""
    every = period()
    if every is None:
        return 0
    now = now or timezone.now()
    _schedule_unscheduled(now, every, batch_size)
    recheck_suspended_installations(now=now, every=every, batch_size=batch_size)
    queued = 0
    while (claimed := _queue_batch(now, every, batch_size)) is not None:
        queued += claimed
    return queued


def recheck_suspended_installations(*, now: datetime, every: timedelta, batch_size: int = BATCH_SIZE) -> None:
    """Ask GitHub about the suspended App installations that are due: the `unsuspend` delivery may
    never have come (GitHub does not redeliver by itself), and a suspended installation is never
    synced. Unsuspended, it is queued by this same pass; uninstalled, it says so; still suspended,
    it is asked about again a period later.

    https://docs.github.com/en/rest/apps/apps#get-an-installation-for-the-authenticated-app
    """
    due = GitHubIntegration.objects.filter(
        connection=GitHubIntegration.Connection.APP,
        installation_id__isnull=False,
        installation_suspended_at__isnull=False,
        disconnected_at__isnull=True,
        next_full_sync_at__lte=now,
    )
    rechecked = due.order_by("next_full_sync_at").values_list("pk", "installation_id")[:batch_size]
    for integration_id, installation_id in rechecked:
        this = GitHubIntegration.objects.filter(pk=integration_id)
        try:
            installation = app.installation(installation_id or 0)  # never None: filtered above
        except GitHubError as error:
            logger.warning("Could not recheck installation %s: %s", installation_id, error)
            this.update(next_full_sync_at=now + every)
            continue
        if installation is None:
            disconnect_uninstalled(this)
        elif installation.suspended_at is None:
            this.update(installation_suspended_at=None)
        else:
            this.update(next_full_sync_at=now + every)


def _schedule_unscheduled(now, every, batch_size):
    unscheduled = GitHubIntegration.objects.filter(next_full_sync_at__isnull=True)
    while ids := list(unscheduled.values_list("pk", flat=True)[:batch_size]):
        # Two workers doing this at once write the same times.
        whens = [When(pk=pk, then=Value(first_full_sync_at(pk, now, every))) for pk in ids]
        unscheduled.filter(pk__in=ids).update(next_full_sync_at=Case(*whens, output_field=DateTimeField()))


def _queue_batch(now, every, batch_size) -> int | None:
    """Claim and queue up to batch_size due integrations; None when none is left."""
    # A due integration with a run under way is left due: the run, when it starts, moves it on.
    run_under_way = MemberSyncRun.objects.filter(integration=OuterRef("pk"), status__in=ACTIVE_SYNC_STATUSES)
    due = GitHubIntegration.objects.filter(can_sync(), ~Exists(run_under_way), next_full_sync_at__lte=now)
    with transaction.atomic():
        ids = list(
            due.select_for_update(skip_locked=True, of=("self",))
            .order_by("next_full_sync_at")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return None
        claimed = GitHubIntegration.objects.filter(pk__in=ids, next_full_sync_at__lte=now).update(
            next_full_sync_at=now + every
        )
        if claimed != len(ids):
            raise ClaimLost(f"claimed {claimed} of {len(ids)} due integrations")
        return len(tasks.request_member_syncs(ids, trigger=MemberSyncRun.Trigger.SCHEDULE))
