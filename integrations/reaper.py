"""The periodic check for stalled runs (SPEC §4): every worker process looks once a minute for
runs whose worker died or whose message never came, and ends them. Ending a run is a conditional
UPDATE, so several workers doing this at once is harmless."""

import logging
import threading

import dramatiq

logger = logging.getLogger(__name__)


class StalledRunReaper(dramatiq.Middleware):
    interval_seconds = 60

    def __init__(self):
        self.stopped = threading.Event()

    def after_worker_boot(self, broker, worker):
        threading.Thread(target=self._loop, name="stalled-run-reaper", daemon=True).start()

    def before_worker_shutdown(self, broker, worker):
        self.stopped.set()

    def _loop(self):
        # Imported here: django_dramatiq builds the middleware before Django's apps are ready.
        from django.db import close_old_connections

        from integrations.runs import reap_stalled_runs

        while not self.stopped.wait(self.interval_seconds):
            try:
                reaped = reap_stalled_runs()
                if reaped:
                    logger.warning("Ended %d stalled member sync run(s)", reaped)
            except Exception:
                logger.exception("The stalled-run check failed; it runs again in a minute")
            finally:
                close_old_connections()
