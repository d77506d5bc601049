"""Which run and team a log record belongs to: every line logged while the actor runs a sync (the
actor, the run service, the sync service, the GitHub client, the libraries under them) carries
run_id and team_id, "-" outside a sync. The format in settings.LOGGING shows them."""

import contextvars
import logging
from contextlib import contextmanager

_current = contextvars.ContextVar("member_sync_run", default=("-", "-"))


@contextmanager
def sync_context(run_id):
    token = _current.set((run_id, "-"))
    try:
        yield
    finally:
        _current.reset(token)


def set_team(team_id) -> None:
    """The team, once the run is read: the actor is given the run's id only."""
    run_id, _ = _current.get()
    _current.set((run_id, team_id))


def install() -> None:
    """Stamp every record at its creation, whichever handler gets it (the console, pytest's caplog,
    Sentry, which sends them as the event's extra data). A filter on one handler would stamp only its own."""
    base = logging.getLogRecordFactory()
    if getattr(base, "stamps_sync_context", False):
        return

    def factory(*args, **kwargs):
        record = base(*args, **kwargs)
        record.run_id, record.team_id = _current.get()
        return record

    factory.stamps_sync_context = True  # type: ignore[attr-defined]  # a mark on the function, read back above
    logging.setLogRecordFactory(factory)
