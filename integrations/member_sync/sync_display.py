"""What a page shows of a member sync run: its badge, headline, progress, waiting line, error, the fix
to offer and its warnings. Written once here: the status include renders it, and every member-sync
event carries it, so the page's script only puts the given text in place."""

from datetime import UTC, datetime

from integrations import words
from integrations.models import MemberSyncRun, MemberSyncStatus

Status = MemberSyncStatus


def shown(run: MemberSyncRun | None, organization: str) -> dict:
    """Return what a page shows of `run`, the latest run of an integration of `organization` (None:
    never synced), as JSON-ready values."""
    if run is None:
        return _shown_by_status(Status.PENDING, organization, imported=0)
    status = Status(run.status)
    ended = status in (Status.COMPLETE, Status.ERROR)
    return {
        **_shown_by_status(status, organization, imported=run.total or run.fetched),
        "progress": _progress(run) if status == Status.SYNCING else None,
        "waiting": _waiting(run, run.waiting_until) if status == Status.QUEUED and run.waiting_until else None,
        "error": run.error if status == Status.ERROR else "",
        "hint": words.HINTS.get(run.error_kind, "") if status == Status.ERROR else "",
        "held": run.members_held if status == Status.COMPLETE else 0,
        "skipped": run.members_skipped if status == Status.COMPLETE else 0,
        "finished": _finished(run, run.finished_at) if ended and run.finished_at else None,
    }


def _shown_by_status(status: MemberSyncStatus, organization: str, *, imported: int) -> dict:
    """What the status alone shows; the rest as for a run with nothing to show beyond it."""
    return {
        "status": status.value,
        "label": status.label,
        "headline": words.HEADLINES[status].format(organization=organization, imported=imported),
        "progress": None,
        "waiting": None,
        "error": "",
        "hint": "",
        "held": 0,
        "skipped": 0,
        "finished": None,
    }


def _progress(run: MemberSyncRun) -> dict:
    text = f"{run.fetched} of {run.total}" if run.total else f"{run.fetched} fetched"
    return {"fetched": run.fetched, "total": run.total, "text": text}


def _waiting(run: MemberSyncRun, until: datetime) -> dict:
    # While a run waits, its error field says why (a rate limit, GitHub failing).
    return {"reason": run.error, **_time(until, "%H:%M UTC")}


def _finished(run: MemberSyncRun, finished_at: datetime) -> dict:
    counts = ""
    if run.status == Status.COMPLETE:
        counts = (
            f"{run.members_created} created, {run.members_updated} updated, "
            f"{run.members_deactivated} deactivated, {run.members_unchanged} unchanged."
        )
    return {"counts": counts, **_time(finished_at, "%Y-%m-%d %H:%M UTC")}


def _time(moment: datetime, utc_format: str) -> dict:
    """A moment for a <time> element: its ISO value, and its UTC text, shown until the page's script
    puts it in the reader's time zone, and on hover after."""
    return {"at": moment.isoformat(), "utc": moment.astimezone(UTC).strftime(utc_format)}
