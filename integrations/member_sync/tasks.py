"""The member sync's queue: a request records the run and sends its message once it commits; the
Dramatiq actors take the message, claim the run, call the sync service and record the outcome."""

import logging
import random
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import dramatiq
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from dramatiq.middleware import CurrentMessage, Shutdown, TimeLimitExceeded

from integrations import words
from integrations.crypto import TokenUnreadable
from integrations.github.errors import GitHubError, RateLimited, secondary_wait
from integrations.member_sync import large_syncs, run_logging, runs, webhooks
from integrations.member_sync.run_events import publish_member_sync
from integrations.member_sync.sync import github_client, sync_members
from integrations.models import GitHubIntegration, MemberSyncRun
from integrations.words import ErrorKind

logger = logging.getLogger(__name__)


MAX_RETRIES = 5


SYNC_OPTIONS: dict[str, Any] = {
    "max_retries": MAX_RETRIES,
    "time_limit": settings.MEMBER_SYNC_TIME_LIMIT_SECONDS * 1000,
    "notify_shutdown": True,
    # Only a worker shutdown is retried by the middleware's backoff (the actor sets its own delays
    # otherwise): come back soon.
    "min_backoff": 1000,
}


@dramatiq.actor(queue_name="member_sync", **SYNC_OPTIONS)
def sync_github_members(run_id: int) -> None:
    with run_logging.sync_context(run_id):
        _sync(run_id, actor=sync_github_members)


# How long a large sync waits before it asks for a slot again (integrations/member_sync/large_syncs.py).
LARGE_SYNC_SLOT_WAIT = timedelta(seconds=5)


@dramatiq.actor(queue_name="member_sync_large", **SYNC_OPTIONS)
def sync_large_github_members(run_id: int) -> None:
    """A large organization's sync (_send decides which): on a queue of its own, and only while it
    holds one of the few slots, so that however many are due the other threads stay free for small teams."""
    with run_logging.sync_context(run_id):
        if not large_syncs.claim(run_id):
            _wait_for_a_large_sync_slot(run_id)
            return
        started = True
        try:
            started = _sync(run_id, actor=sync_large_github_members)
        finally:
            # A second message of a run that another worker is syncing leaves that worker the slot.
            if started or runs.claimable_at(run_id) is None:
                large_syncs.release(run_id)


def _wait_for_a_large_sync_slot(run_id: int) -> None:
    # A new message, not a dramatiq.Retry: a Retry counts against max_retries, and a run that
    # waited its turn that many times would be dropped though nothing failed. It carries the
    # retries earlier failures used. The run stays queued; its waiting_until, moved each time,
    # tells the reaper that it is not lost.
    until = timezone.now() + LARGE_SYNC_SLOT_WAIT
    if runs.postpone_run(run_id, until=until, message=words.WAITING_FOR_LARGE_SYNCS):
        _send_again(sync_large_github_members, run_id, delay=LARGE_SYNC_SLOT_WAIT)
    else:
        logger.info("Member sync run %s is finished, taken or gone: nothing to do", run_id)


def _sync(run_id: int, *, actor: dramatiq.Actor) -> bool:
    """Claim the run and sync it; False when it could not be claimed (finished, gone, another worker's)."""
    run = runs.start_run(run_id)
    if run is None:
        _ask_again_if_its_worker_may_be_dead(run_id, actor=actor)
        return False
    run_logging.set_team(run.integration.team_id)
    try:
        with github_client(run.integration) as client:
            result = sync_members(run=run, client=client, on_progress=runs.ProgressReporter(run))
        runs.complete_run(run, result)
    except GitHubError as error:
        if error.transient and _retries_used() < MAX_RETRIES:
            until = _retry_at(error)
            runs.retry_run_later(run, until=until, message=str(error))
            raise dramatiq.Retry(str(error), delay=_milliseconds_until(until)) from error
        runs.fail_run(run, error=str(error), kind=runs.error_kind_of(error))
    except TokenUnreadable as error:
        runs.fail_run(run, error=words.RECONNECT_NEEDED, kind=runs.error_kind_of(error))
    except TimeLimitExceeded:
        runs.fail_run(run, error=words.TIMED_OUT, kind=ErrorKind.INTERRUPTED)
    except Shutdown:
        if _retries_used() >= MAX_RETRIES:
            runs.fail_run(run, error=words.SHUT_DOWN_TOO_OFTEN, kind=ErrorKind.INTERRUPTED)
            raise
        # Back to queued: the Retries middleware enqueues the message again and a worker takes it.
        runs.retry_run_later(run, until=timezone.now(), message=words.SHUTTING_DOWN)
        raise
    except Exception:
        logger.exception("Member sync run %s failed", run_id)
        runs.fail_run(run, error=words.UNEXPECTED, kind=ErrorKind.UNEXPECTED)
    except BaseException:
        # Whatever else ended the actor (another Interrupt, an exit), the run must not stay syncing.
        runs.fail_run(run, error=words.INTERRUPTED, kind=ErrorKind.INTERRUPTED)
        raise
    return True


@dramatiq.actor(
    # A queue of its own: webhook changes wait behind no full sync's message.
    queue_name="github_webhooks",
    # Applying a change again is harmless (it sets a state), so a failure is retried, a few times.
    max_retries=3,
    min_backoff=1000,
    time_limit=60_000,
)
def apply_github_webhook(event: str, payload: dict, delivery_id: str) -> None:
    logger.info("Applying webhook delivery %r (%s.%s)", delivery_id, event, payload.get("action"))
    for integration in webhooks.apply(event, payload):
        request_member_sync(integration=integration, trigger=MemberSyncRun.Trigger.WEBHOOK)


def _ask_again_if_its_worker_may_be_dead(run_id: int, *, actor: dramatiq.Actor) -> None:
    """The broker gives a killed worker's message to another once that worker has been silent for
    the heartbeat timeout, which can be a moment before the run it was syncing has (the run's
    heartbeat is written on each page). Dropped then, the run would wait minutes for the stalled-run
    check: the message comes back when the run can be claimed, and is dropped if its worker lives."""
    claimable_at = runs.claimable_at(run_id)
    if claimable_at is None:
        logger.info("Member sync run %s is finished or gone: nothing to do", run_id)
        return
    _send_again(actor, run_id, delay=_milliseconds_until(claimable_at) + 1000)


def _send_again(actor: dramatiq.Actor, run_id: int, *, delay: int | timedelta) -> None:
    """The run's message once more, later, with the retries earlier failures used (a wait uses none)."""
    actor.send_with_options(args=(run_id,), delay=delay, retries=_retries_used())


def _retries_used() -> int:
    message = CurrentMessage.get_current_message()
    return message.options.get("retries", 0) if message else 0


def _retry_at(error: GitHubError) -> datetime:
    attempt = _retries_used()
    if isinstance(error, RateLimited) and error.secondary:
        # GitHub asks for longer waits while a secondary limit keeps coming back.
        return max(error.reset_at, timezone.now() + secondary_wait(attempt))
    if isinstance(error, RateLimited):
        return error.reset_at
    backoff = min(300, 5 * 2**attempt) * random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not security)
    return timezone.now() + timedelta(seconds=backoff)


def _milliseconds_until(moment: datetime) -> int:
    return max(0, int((moment - timezone.now()).total_seconds() * 1000))


def request_member_sync(
    *, integration: GitHubIntegration, trigger: str, requested_by: AbstractBaseUser | None = None
) -> tuple[MemberSyncRun, bool]:
    """Queue a sync, or return the run already under way (a double click or two admins at once start
    one run). Returns (run, created). The message is sent after commit, so the worker never reads
    before the run exists; if the broker cannot be reached the run ends as an error at once."""
    run, created = runs.create_run(integration, trigger=trigger, requested_by=requested_by)
    if created:
        transaction.on_commit(partial(_send, [run]))
    return run, created


def request_member_syncs(integration_ids: Sequence[int], *, trigger: str) -> list[MemberSyncRun]:
    """Queue a run for each of these integrations with none under way, in a few statements however
    many they are: the schedule's path. Call it in a transaction; the messages go once it commits."""
    queued = runs.create_runs(integration_ids, trigger=trigger)
    transaction.on_commit(partial(_send, queued))
    return queued


def _send(queued_runs: Sequence[MemberSyncRun]) -> None:
    totals = last_member_totals([run.integration_id for run in queued_runs])
    for run in queued_runs:
        # Announced before it is sent, so that no worker's "syncing" can reach a browser before it.
        publish_member_sync(run)
        large = totals.get(run.integration_id, 0) >= settings.MEMBER_SYNC_LARGE_ORGANIZATION
        actor = sync_large_github_members if large else sync_github_members
        try:
            actor.send(run.pk)
        except Exception:
            logger.exception("Could not enqueue member sync run %s", run.pk)
            runs.fail_run(run, error=words.QUEUE_UNAVAILABLE, kind=ErrorKind.INTERRUPTED)


def last_member_totals(integration_ids: Iterable[int]) -> dict[int, int]:
    """The members of each integration's organization as its latest full sync counted them, for
    those whose size is known: one read, for one run or a batch of the schedule's."""
    latest = (
        MemberSyncRun.objects.filter(integration=OuterRef("pk"), total__isnull=False)
        # A webhook's run counts the one member it changed.
        .exclude(trigger=MemberSyncRun.Trigger.WEBHOOK)
        .order_by("-queued_at", "-id")
        .values("total")[:1]
    )
    rows = (
        GitHubIntegration.objects.filter(pk__in=integration_ids)
        .annotate(member_total=Subquery(latest))
        .values_list("pk", "member_total")
    )
    return {pk: total for pk, total in rows if total is not None}
