"""The run's state machine: every transition of a member sync run, and nothing else
(docs/interfaces.md#runs-states-and-triggers).

pending (never synced) → queued → syncing → complete | error

Each transition is a conditional UPDATE … WHERE status IN (…), checked by its row count, so two
workers, a redelivered message and the reaper can never move one run twice. Each is mirrored on
the integration's member_sync_* fields and published as a member-sync event.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from integrations import words
from integrations.crypto import TokenUnreadable
from integrations.github.errors import GitHubError
from integrations.member_sync.run_events import publish_member_sync
from integrations.member_sync.sync import Progress, SyncResult
from integrations.models import ACTIVE_SYNC_STATUSES, GitHubIntegration, MemberSyncRun, StagedMember
from integrations.notifications import outbox
from integrations.words import ErrorKind

logger = logging.getLogger(__name__)

Status = MemberSyncRun.Status


# A syncing run's heartbeat moves with every page. The reaper ends one silent this long.
REAP_SYNCING_AFTER = timedelta(minutes=5)
# A queued run whose message never arrives (the broker lost it) is ended after this long.
REAP_QUEUED_AFTER = timedelta(minutes=30)


class SyncAlreadyChanging(Exception):
    """Runs of this integration started and ended twice while one more was being requested."""


def create_run(integration: GitHubIntegration, **fields: Any) -> tuple[MemberSyncRun, bool]:
    """A new queued run of the integration, mirrored on it, or the run already under way: (run, created).
    A refused insert is told to be the one-active-run constraint's by the run then found under way, not
    by the database's words (each names the constraint its own way)."""
    for _attempt in range(2):
        try:
            with transaction.atomic():
                run = MemberSyncRun.objects.create(integration=integration, **fields)
                _save_on_integration(run)
            return run, True
        except IntegrityError:
            active = _active_run(integration)
            if active is not None:
                return active, False
            if not GitHubIntegration.objects.filter(pk=integration.pk).exists():
                raise  # not a conflict: the integration is gone
            # The active run finished between our insert and this read: ask once more.
    raise SyncAlreadyChanging("Another sync was starting and finishing at the same moment; try again.")


def create_runs(integration_ids: Sequence[int], *, trigger: str) -> list[MemberSyncRun]:
    """A new queued run for each of these integrations, in a few statements however many they are,
    mirrored on them: the schedule's path. An integration whose run is already under way keeps it
    and gets none: the INSERT skips the rows the one-active-run constraint refuses (ON CONFLICT DO
    NOTHING on PostgreSQL, INSERT OR IGNORE on SQLite, both of which honour a partial unique index),
    so a Sync Now pressed meanwhile wins."""
    now = timezone.now()
    MemberSyncRun.objects.bulk_create(
        [MemberSyncRun(integration_id=pk, trigger=trigger, queued_at=now) for pk in integration_ids],
        ignore_conflicts=True,
    )
    # An ignored row gets no primary key: read back the runs this call created.
    queued = list(
        MemberSyncRun.objects.filter(
            integration_id__in=integration_ids, trigger=trigger, queued_at=now, status=Status.QUEUED
        ).select_related("integration")
    )
    # What _save_on_integration does for one run. These runs are the newest of their integrations:
    # none can be created while they are active.
    GitHubIntegration.objects.filter(pk__in=[run.integration_id for run in queued]).update(
        member_sync_status=Status.QUEUED, member_sync_error=""
    )
    for run in queued:
        run.integration.member_sync_status, run.integration.member_sync_error = Status.QUEUED, ""
    return queued


def _active_run(integration: GitHubIntegration) -> MemberSyncRun | None:
    active = MemberSyncRun.objects.filter(integration=integration, status__in=ACTIVE_SYNC_STATUSES).first()
    if active is not None:
        active.integration = integration
    return active


def run_webhook_change(
    *, integration: GitHubIntegration, apply: Callable[[MemberSyncRun], SyncResult]
) -> MemberSyncRun | None:
    """Apply one member change a webhook brought, as a run with trigger `webhook`, published like any
    run's so that an open members page shows it. `apply` is given the run its changes are recorded
    for. Returns that run, or None when another was under way.

    A full sync under way may take minutes, and holds the one active run an integration may have: the
    change is applied at once without a run of its own, and recorded for that sync. The full sync keeps
    it (member_writes leaves alone the members a webhook changed after it began reading), and the page
    shows it when that run ends. The latest run is published once more, in case it ended between our
    attempt and the change.
    """
    run = _open_webhook_run(integration)
    if run is None:
        latest = MemberSyncRun.objects.filter(integration=integration).select_related("integration").first()
        if latest is None:  # never happens to a connected integration: its first run is queued with it
            raise MemberSyncRun.DoesNotExist(f"Integration {integration.pk} has no run to record a change for")
        apply(latest)  # the run under way, or one that ended meanwhile
        if latest.status not in ACTIVE_SYNC_STATUSES:
            latest.change_counts = latest.count_changes()
            MemberSyncRun.objects.filter(pk=latest.pk).update(change_counts=latest.change_counts)
        publish_member_sync(latest)
        return None
    try:
        result = apply(run)
    except BaseException as error:  # an Interrupt (a time limit, a shutdown) is one too
        # GitHub's refusal says what to do (reconnect, unsuspend…); a passing failure is tried again.
        said = isinstance(error, GitHubError) and not error.transient
        fail_run(run, error=str(error) if said else words.WEBHOOK_FAILED, kind=error_kind_of(error))
        raise
    complete_run(run, result)
    return run


def _open_webhook_run(integration: GitHubIntegration) -> MemberSyncRun | None:
    """A webhook's run, created and claimed at once (the caller is its worker), or None while another is active."""
    try:
        run, created = create_run(integration, trigger=MemberSyncRun.Trigger.WEBHOOK)
    except SyncAlreadyChanging:
        return None  # runs come and go: the change is applied without one of its own
    if not created:
        return None
    publish_member_sync(run)
    return start_run(run.pk)


def start_run(run_id: int) -> MemberSyncRun | None:
    """Claim a queued run for this worker, or a syncing one silent for the broker's heartbeat timeout,
    after which the broker gives its message to another worker: its own has died. None when the run
    is finished, taken by a live worker, or gone: the message is then a duplicate."""
    now = timezone.now()
    with transaction.atomic():
        claimed = _claimable(run_id, now).update(
            status=Status.SYNCING, started_at=now, heartbeat_at=now, waiting_until=None, fetched=0, error=""
        )
        if not claimed:
            return None
        run = MemberSyncRun.objects.select_related("integration").get(pk=run_id)
        _save_on_integration(run)
    publish_member_sync(run)
    return run


def claimable_at(run_id: int) -> datetime | None:
    """When a run that a worker is syncing can be claimed by another, if that worker has died by
    then; None for a run that is not syncing."""
    heartbeat = (
        MemberSyncRun.objects.filter(pk=run_id, status=Status.SYNCING, heartbeat_at__isnull=False)
        .values_list("heartbeat_at", flat=True)
        .first()
    )
    return heartbeat + _heartbeat_timeout() if heartbeat is not None else None


def _claimable(run_id: int, now: datetime) -> QuerySet[MemberSyncRun]:
    return MemberSyncRun.objects.filter(pk=run_id, status=Status.QUEUED) | MemberSyncRun.objects.filter(
        pk=run_id, status=Status.SYNCING, heartbeat_at__lt=now - _heartbeat_timeout()
    )


def _heartbeat_timeout() -> timedelta:
    # The broker's: after that long without a word from a worker, its messages go to another.
    return timedelta(milliseconds=settings.DRAMATIQ_HEARTBEAT_TIMEOUT_MS)


def postpone_run(run_id: int, *, until: datetime, message: str) -> bool:
    """A run that start_run could claim, left for later: a queued one says why and until when (its
    waiting_until also tells the reaper it is not lost). False when no worker should take it: the
    run is finished, taken by a live worker, or gone."""
    run = _claimable(run_id, timezone.now()).select_related("integration").first()
    if run is None:
        return False
    if run.status == Status.QUEUED:
        _transition(run, from_statuses=[Status.QUEUED], status=Status.QUEUED, waiting_until=until, error=message)
    return True


class ProgressReporter:
    """The sync's progress callback: moves the heartbeat every page, publishes at most a few times a second."""

    min_interval = 0.25

    def __init__(self, run: MemberSyncRun) -> None:
        self.run = run
        # The run's `syncing` was just published: its first progress waits the interval too, so a
        # sync of one page sends none before its `complete`. Behind Pushpin every event costs a
        # fan-out to every open page of the team (about 0.2 s to 5,000 pages on two cores).
        self.last_published = time.monotonic()

    def __call__(self, progress: Progress) -> None:
        run = self.run
        fields = asdict(progress)  # named as the run's
        for name, value in fields.items():
            setattr(run, name, value)
        MemberSyncRun.objects.filter(pk=run.pk, status=Status.SYNCING).update(**fields, heartbeat_at=timezone.now())
        if time.monotonic() - self.last_published >= self.min_interval:
            self.last_published = time.monotonic()
            publish_member_sync(run)


def complete_run(run: MemberSyncRun, result: SyncResult) -> bool:
    return _transition(
        run,
        from_statuses=[Status.SYNCING],
        status=Status.COMPLETE,
        finished_at=timezone.now(),
        fetched=result.total,
        total=result.total,
        members_created=result.created,
        members_updated=result.updated,
        members_deactivated=result.deactivated,
        members_unchanged=result.unchanged,
        members_held=result.held,
        members_skipped=result.skipped,
        api_calls=result.api_calls,
        change_counts=run.count_changes(),
        error="",
    )


def fail_run(
    run: MemberSyncRun, *, error: str, kind: ErrorKind, only_if: QuerySet[MemberSyncRun] | None = None
) -> bool:
    """End the run in error, if it is still queued or syncing (and, given `only_if`, still one of
    those runs: the reaper's stalled ones), and delete the pages it staged, never to be applied."""
    failed = _transition(
        run,
        from_statuses=ACTIVE_SYNC_STATUSES,
        only_if=only_if,
        status=Status.ERROR,
        finished_at=timezone.now(),
        waiting_until=None,
        error=error,
        error_kind=kind,
    )
    if failed:
        StagedMember.objects.filter(run=run).delete()
    return failed


def error_kind_of(error: BaseException) -> ErrorKind:
    """Who can fix what ended a run: GitHub's errors say it themselves (integrations.github.errors)."""
    if isinstance(error, GitHubError):
        return ErrorKind(error.kind)
    if isinstance(error, TokenUnreadable):
        return ErrorKind.CREDENTIALS  # a token stored anew, by reconnecting, can be read
    if not isinstance(error, Exception):
        return ErrorKind.INTERRUPTED  # a time limit, a shutdown, an exit
    return ErrorKind.UNEXPECTED


def retry_run_later(run: MemberSyncRun, *, until: datetime, message: str = "") -> bool:
    """Back to queued, to be picked up again at `until` (a rate limit's reset, or a backoff)."""
    return _transition(run, from_statuses=[Status.SYNCING], status=Status.QUEUED, waiting_until=until, error=message)


def reap_stalled_runs() -> int:
    """End runs whose worker died and runs whose message never came. The periodic check."""
    now = timezone.now()
    stalled = MemberSyncRun.objects.filter(status=Status.SYNCING, heartbeat_at__lt=now - REAP_SYNCING_AFTER)
    forgotten = MemberSyncRun.objects.filter(status=Status.QUEUED, queued_at__lt=now - REAP_QUEUED_AFTER).exclude(
        waiting_until__gt=now - REAP_QUEUED_AFTER
    )
    reaped = 0
    # The staleness is asked again in each UPDATE: a worker may claim a run after this read.
    for run in stalled.select_related("integration"):
        reaped += fail_run(run, error=words.WORKER_LOST, kind=ErrorKind.INTERRUPTED, only_if=stalled)
    for run in forgotten.select_related("integration"):
        reaped += fail_run(run, error=words.QUEUED_TOO_LONG, kind=ErrorKind.INTERRUPTED, only_if=forgotten)
    return reaped


def _transition(
    run: MemberSyncRun,
    *,
    from_statuses: Sequence[str],
    only_if: QuerySet[MemberSyncRun] | None = None,
    **changes: Any,
) -> bool:
    """Move the run if it is still in one of `from_statuses` (and still in the queryset `only_if`),
    mirror it on the integration in the same transaction, then publish it; a run that ended is
    announced to the team's notification endpoint and, when one of them must act, its admins."""
    candidates = (only_if if only_if is not None else MemberSyncRun.objects).filter(status__in=from_statuses)
    with transaction.atomic():
        if not candidates.filter(pk=run.pk).update(**changes):
            return False
        for field, value in changes.items():
            setattr(run, field, value)
        _save_on_integration(run)
    if run.status == Status.ERROR:
        # Every way a run fails passes here; at ERROR, error reporting (Sentry) gets each one.
        logger.error(
            "Member sync run %s of team %s failed (%s): %s", run.pk, run.integration.team_id, run.error_kind, run.error
        )
    publish_member_sync(run)
    if run.status in (Status.COMPLETE, Status.ERROR):
        # Its notifications and mail leave after the commit (integrations/notifications/outbox.py).
        outbox.run_ended(run)
    return True


def republish(run: MemberSyncRun) -> None:
    """Mirror a finished run on its integration and publish it again, after its counts changed
    outside a transition (an admin decided on the deactivations it held)."""
    _save_on_integration(run)
    publish_member_sync(run)


def _save_on_integration(run: MemberSyncRun) -> None:
    """Mirror the run's state on its integration's member_sync_* fields (docs/interfaces.md#models)."""
    fields: dict[str, Any] = {"member_sync_status": run.status}
    if run.status == Status.QUEUED:
        fields["member_sync_error"] = ""
    elif run.status == Status.SYNCING:
        fields["member_sync_started_at"] = run.started_at
        if settings.MEMBER_SYNC_EVERY_SECONDS and run.trigger != MemberSyncRun.Trigger.WEBHOOK and run.started_at:
            # A full sync starts: the scheduled one is due a period from now
            # (docs/interfaces.md#runs-states-and-triggers), so Sync Now postpones it. A webhook's
            # run applies one change and postpones nothing.
            fields["next_full_sync_at"] = run.started_at + timedelta(seconds=settings.MEMBER_SYNC_EVERY_SECONDS)
    else:
        fields.update(
            member_sync_completed_at=run.finished_at, member_sync_error=run.error, member_sync_result=run.result()
        )
    # Only the latest run speaks for the integration: an older one ending late must not undo it.
    newer_runs = MemberSyncRun.objects.filter(integration=OuterRef("pk"), pk__gt=run.pk)
    GitHubIntegration.objects.filter(pk=run.integration_id).exclude(Exists(newer_runs)).update(**fields)
    for field, value in fields.items():
        setattr(run.integration, field, value)
