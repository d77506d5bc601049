"""Periodic work in every worker process: a thread per check, started by a Dramatiq middleware when
the worker boots, so that it needs no process beyond the workers `make run` and `make cluster`
start. Each check must be safe to run in several processes at once: the stalled-run check ends a
run by a conditional UPDATE, the schedule claims due integrations by one."""

import logging
import threading

import dramatiq
from django.conf import settings

logger = logging.getLogger(__name__)


class PeriodicCheck(dramatiq.Middleware):
    """Calls check() every interval_seconds() in a thread of each worker process."""

    name = "periodic-check"

    def __init__(self):
        self.stopped = threading.Event()

    def after_worker_boot(self, broker, worker):
        threading.Thread(target=self._loop, name=self.name, daemon=True).start()

    def before_worker_shutdown(self, broker, worker):
        self.stopped.set()

    def interval_seconds(self) -> float:
        return 60

    def check(self):
        raise NotImplementedError

    def _loop(self):
        # Imported here: django_dramatiq builds the middleware before Django's apps are ready.
        from django.db import close_old_connections

        while not self.stopped.wait(self.interval_seconds()):
            try:
                self.check()
            except Exception:
                logger.exception("The %s failed; it runs again at its next interval", self.name)
            finally:
                close_old_connections()


class StalledRunReaper(PeriodicCheck):
    """Once a minute, ends runs whose worker died or whose message never came
    (docs/interfaces.md#runs-states-and-triggers), and frees the large-sync slots they held."""

    name = "stalled-run check"

    def check(self):
        from integrations.member_sync import large_syncs
        from integrations.member_sync.runs import reap_stalled_runs

        reaped = reap_stalled_runs()
        if reaped:
            logger.warning("Ended %d stalled member sync run(s)", reaped)
        # A large sync's slot comes back once its run has ended, however its worker died.
        if freed := large_syncs.release_ended():
            logger.warning("Freed the large-sync slots of %d ended run(s)", freed)


class ScheduledFullSyncs(PeriodicCheck):
    """Queues the integrations due their scheduled full re-sync, then prunes the change records past
    MEMBER_CHANGES_KEEP_DAYS, a few batches a pass (also when the re-sync is off)."""

    name = "scheduled full re-sync"

    def interval_seconds(self) -> float:
        return settings.MEMBER_SYNC_SCHEDULE_CHECK_SECONDS

    def check(self):
        from integrations.member_sync.retention import prune_member_changes
        from integrations.member_sync.schedule import queue_due_full_syncs

        queued = queue_due_full_syncs()
        if queued:
            logger.info("Queued the scheduled full re-sync of %d integration(s)", queued)
        if pruned := prune_member_changes():
            logger.info("Pruned %d change record(s) older than MEMBER_CHANGES_KEEP_DAYS", pruned)


class WebhookHealingCheck(PeriodicCheck):
    """Asks GitHub for the App's failed webhook deliveries and has them sent again, once a
    GITHUB_WEBHOOK_HEALING_SECONDS in one worker (integrations/member_sync/healing.py)."""

    name = "webhook healing"

    def interval_seconds(self) -> float:
        return settings.MEMBER_SYNC_SCHEDULE_CHECK_SECONDS

    def check(self):
        from integrations.member_sync.healing import heal_webhooks

        heal_webhooks()


class UnpublishedRunsCheck(PeriodicCheck):
    """Every half second, publishes again the current state of the runs whose event this worker
    process failed to publish (the events Redis down), once Redis answers: an open page then shows
    the run as it is within about a second of Redis coming back (integrations/member_sync/run_events.py)."""

    name = "unpublished runs"

    def interval_seconds(self) -> float:
        return 0.5

    def check(self):
        from integrations.member_sync.run_events import republish_unpublished

        if published := republish_unpublished():
            logger.info("Published again the state of %d run(s) whose event had failed", published)


class NotificationUpkeep(PeriodicCheck):
    """Every MEMBER_SYNC_SCHEDULE_CHECK_SECONDS: queues again the notification deliveries whose
    message was lost, and forgets deliveries past their keep (integrations/notifications/deliveries.py)."""

    name = "notification upkeep"

    def interval_seconds(self) -> float:
        return settings.MEMBER_SYNC_SCHEDULE_CHECK_SECONDS

    def check(self):
        from integrations.notifications.deliveries import prune, resend_lost

        if resent := resend_lost():
            logger.warning("Queued again %d notification delivery(ies) whose message was lost", resent)
        prune()
