"""A member sync run as a person sees it, and the event that carries it to their page.

`shown`: what a page shows of a run (its badge, headline, progress, waiting line, error, the fix to
offer and its warnings), written once here: the status include renders it, and every member-sync
event carries it, so the page's script only puts the given text in place. The event
(member_sync_payload) carries the keys of docs/interfaces.md#the-member-sync-event: never a token,
never another team's data. This module is the only caller of send_event.
"""

import logging
import threading
import time
from datetime import UTC, datetime

from django.utils import timezone

from integrations import words
from integrations.live.channels import team_channel
from integrations.live.eventstream import send_event
from integrations.models import MemberSyncRun, MemberSyncStatus

logger = logging.getLogger(__name__)

MEMBER_SYNC_EVENT = "member-sync"

Status = MemberSyncStatus


def member_sync_payload(run: MemberSyncRun) -> dict:
    waiting_until = run.waiting_until if run.status == run.Status.QUEUED else None
    return {
        "run": run.pk,
        "status": run.status,
        "trigger": run.trigger,
        "fetched": run.fetched,
        "total": run.total,
        "result": run.result(),
        "error": (run.error or None) if run.status == run.Status.ERROR else None,
        # What kind of error, so the page offers the one fix that applies.
        "error_kind": (run.error_kind or None) if run.status == run.Status.ERROR else None,
        # A queued run waiting for GitHub (a rate limit's reset, or a retry after GitHub failed)
        # says until when, and why.
        "waiting": {"until": waiting_until.isoformat(), "reason": run.error} if waiting_until else None,
        "at": timezone.now().isoformat(),
        # What the page shows of the run, its text written once (shown, below).
        "shown": shown(run, run.integration.organization_login),
    }


# A run's end is the one event an open page must not miss: published again for a few seconds, so
# that a restarting events Redis gets it. Progress on the way is not worth the wait.
END_OF_RUN_RETRY_DELAYS = (0.2, 0.5, 1, 2, 4)


# Runs of this process whose latest publish failed (the events Redis down): their current state is
# published again once Redis answers (republish_unpublished, every half second in each worker).
# Otherwise a page whose stream stayed open would show the last state that got through until the
# run's next event, which for a run held up (by GitHub, or at its last page) may be a long while.
_unpublished: set[int] = set()
_unpublished_lock = threading.Lock()


def publish_member_sync(run: MemberSyncRun) -> None:
    """Publish the run's state on its team's channel. A failure to publish is logged, never raised:
    the run's state is in the database, and it is published again once Redis answers. Load the run
    with its integration (select_related), read for its team, or every progress event costs a query."""
    team_id = run.integration.team_id
    ended = run.status in (run.Status.COMPLETE, run.Status.ERROR)
    for delay in (*(END_OF_RUN_RETRY_DELAYS if ended else ()), None):
        try:
            send_event(team_channel(team_id), MEMBER_SYNC_EVENT, member_sync_payload(run))
        except Exception:
            if delay is None:
                logger.exception("Could not publish member-sync event for run %s", run.pk)
                with _unpublished_lock:
                    _unpublished.add(run.pk)
                return
            time.sleep(delay)
        else:
            # Its current state went out: nothing of it is left to publish again.
            with _unpublished_lock:
                _unpublished.discard(run.pk)
            return


def republish_unpublished() -> int:
    """Publish again, from the database, the current state of the runs whose latest publish failed
    in this process; those that fail again stay for the next call. Returns how many went out."""
    with _unpublished_lock:
        pending = sorted(_unpublished)
    if not pending:
        return 0
    runs = list(MemberSyncRun.objects.select_related("integration").filter(pk__in=pending))
    with _unpublished_lock:
        # A run deleted meanwhile has nothing left to show.
        _unpublished.difference_update(set(pending) - {run.pk for run in runs})
    published = 0
    for run in runs:
        try:
            # Its `at` is taken after the read: an event of a newer state, published meanwhile by
            # the run's own thread, is dated later, and the page keeps that one.
            send_event(team_channel(run.integration.team_id), MEMBER_SYNC_EVENT, member_sync_payload(run))
        except Exception:
            return published  # Redis still down: the rest wait too
        published += 1
        with _unpublished_lock:
            _unpublished.discard(run.pk)
    return published


def shown(run: MemberSyncRun | None, organization: str) -> dict:
    """What a page shows of `run`, the latest run of an integration of `organization` (None: never
    synced), as JSON-ready values."""
    run = run or MemberSyncRun(status=Status.PENDING)
    status = Status(run.status)
    ended = status in (Status.COMPLETE, Status.ERROR)
    return {
        "status": status.value,
        "label": status.label,
        "headline": words.HEADLINES[status].format(organization=organization, imported=run.total or run.fetched),
        "progress": _progress(run) if status == Status.SYNCING else None,
        "waiting": _waiting(run, run.waiting_until) if status == Status.QUEUED and run.waiting_until else None,
        "error": run.error if status == Status.ERROR else "",
        "hint": words.HINTS.get(run.error_kind, "") if status == Status.ERROR else "",
        "held": run.members_held if status == Status.COMPLETE else 0,
        "skipped": run.members_skipped if status == Status.COMPLETE else 0,
        "finished": _finished(run, run.finished_at) if ended and run.finished_at else None,
    }


def _progress(run: MemberSyncRun) -> dict:
    text = f"{run.fetched} of {run.total}" if run.total else f"{run.fetched} fetched"
    return {"fetched": run.fetched, "total": run.total, "text": text}


def _waiting(run: MemberSyncRun, until: datetime) -> dict:
    # While a run waits, its error field says why (a rate limit, GitHub failing).
    return {"reason": run.error, **_time(until, "%H:%M UTC")}


def _finished(run: MemberSyncRun, finished_at: datetime) -> dict:
    counts = changes = ""
    if run.status == Status.COMPLETE:
        counts = (
            f"{run.members_created} created, {run.members_updated} updated, "
            f"{run.members_deactivated} deactivated, {run.members_unchanged} unchanged."
        )
        changes = words.change_summary(run.change_counts or {})
    return {"counts": counts, "changes": changes, **_time(finished_at, "%Y-%m-%d %H:%M UTC")}


def _time(moment: datetime, utc_format: str) -> dict:
    """A moment for a <time> element: its ISO value, and its UTC text, shown until the page's script
    puts it in the reader's time zone, and on hover after."""
    return {"at": moment.isoformat(), "utc": moment.astimezone(UTC).strftime(utc_format)}
