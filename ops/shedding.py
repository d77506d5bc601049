"""Load shedding at the door of each web process, before Django.

After a proxy restart every open page reconnects at once. A web process that takes every request
piles them up (a thread each, each waiting on the database and Redis pools) and answers none of them
in time, and Pushpin, whose queue of requests to the web processes is fixed at 100, then answers 502
to every page of the site, not only the streams. Here a process works on at most
WEB_MAX_PENDING_REQUESTS requests at a time, event streams (the storm) on at most a quarter of them,
and answers the rest at once with 503 and a Retry-After: microseconds each. The page then tries again
after a random delay (static/js/member_sync.js). A request counts until its response starts, so a
stream served by Django for minutes counts only while it opens.

Hand-written: uvicorn's --limit-concurrency counts open connections (Pushpin keeps its own open) and
answers with no Retry-After; the ASGI middleware packages found limit rates, not work in progress.
"""

import logging
import time

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2
# How often the count of requests shed is logged, at most: one line a request would flood the log
# at the moment it matters.
LOG_EVERY_SECONDS = 10


def is_event_stream(path: str) -> bool:
    # The team's stream, integrations/urls.py's github_member_events: /t/<team_slug>/events/.
    return path.startswith("/t/") and path.endswith("/events/")


class LoadShedding:
    def __init__(self, app, *, max_pending: int):
        self.app = app
        self.max_pending = max_pending
        self.max_pending_streams = max(1, max_pending // 4)
        self.pending = self.pending_streams = 0
        self.shed = 0
        self.logged_at = time.monotonic()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stream = is_event_stream(scope["path"])
        if self.pending >= self.max_pending or (stream and self.pending_streams >= self.max_pending_streams):
            await self.refuse(send)
            return
        # One event loop per process: these counts need no lock.
        self.pending += 1
        self.pending_streams += stream
        counted = True

        def done():
            nonlocal counted
            if counted:
                counted = False
                self.pending -= 1
                self.pending_streams -= stream

        async def send_counting(message):
            if message["type"] == "http.response.start":
                done()
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            done()

    async def refuse(self, send):
        self.shed += 1
        now = time.monotonic()
        if now - self.logged_at >= LOG_EVERY_SECONDS:
            seconds = now - self.logged_at
            logger.warning("Shed %d requests in %.0f s: over %d at once", self.shed, seconds, self.max_pending)
            self.shed, self.logged_at = 0, now
        headers = [(b"content-type", b"text/plain"), (b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": b"Busy for a moment: try again shortly.\n"})
