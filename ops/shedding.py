"""Load shedding at the door of each web process, before Django.

After a proxy restart every open page reconnects at once. A web process that takes every request
piles them up (a thread each, each waiting on the database and Redis pools) and answers none of them
in time, and Pushpin, whose queue of requests to the web processes is fixed at 100, then answers 502
to every page of the site, not only the streams. Here a process works on at most
WEB_MAX_PENDING_REQUESTS requests at a time, event streams opening on at most a quarter of them, and
answers the rest at once. A request counts until its response starts, so a stream served by Django
for minutes counts only while it opens.

A page's stream turned away is told when to come back, in the stream itself (an EventSource reads no
status or header): a `stream-busy` event and the SSE `retry` field. Each is given a moment in the
first of the coming seconds that still has room, a second holding twice as many streams as the
process let in during the last one: thousands of pages are so booked over the time the process needs to take
them, about one attempt each, instead of each trying again blind every few seconds (measured: 5,000
pages made 62,000 attempts, and Pushpin spent a core passing them on). Any other request gets 503
with a Retry-After.

Hand-written: uvicorn's --limit-concurrency counts open connections (Pushpin keeps its own open) and
answers with no Retry-After; the ASGI middleware packages found limit rates, not work in progress.
"""

import json
import logging
import random
import time

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2
# How far ahead streams turned away are booked, and how many a second at least (before the process
# has measured how many it takes).
STREAM_RETRY_MAX_SECONDS = 30
STREAMS_A_SECOND_AT_LEAST = 20
# How often the count of requests shed is logged, at most: one line a request would flood the log
# at the moment it matters.
LOG_EVERY_SECONDS = 10


def is_event_stream(path: str) -> bool:
    # The team's stream, integrations/urls.py's github_member_events: /t/<team_slug>/events/.
    return path.startswith("/t/") and path.endswith("/events/")


def follows_a_stream(scope) -> bool:
    """Pushpin following the next link of a stream it holds (django-eventstream signs `es-meta` into
    it): never turned away, for Pushpin closes the stream when that fails; forged, it costs a 400."""
    return b"es-meta=" in scope["query_string"]


class LoadShedding:
    def __init__(self, app, *, max_pending: int):
        self.app = app
        self.max_pending = max_pending
        self.max_pending_streams = max(1, max_pending // 4)
        self.pending = self.pending_streams = 0
        self.shed = 0
        self.logged_at = time.monotonic()
        # Streams let in during the current second and the one before; streams booked to come back,
        # by second.
        self.second = int(time.monotonic())
        self.streams_in = self.streams_in_before = 0
        self.booked: dict[int, int] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path_is_stream = is_event_stream(scope["path"])
        follows = path_is_stream and follows_a_stream(scope)
        stream = path_is_stream and not follows
        if stream:
            self.count_second()
        busy = self.pending >= self.max_pending or (stream and self.pending_streams >= self.max_pending_streams)
        if busy and not follows:
            await (self.turn_stream_away(send) if stream else self.refuse(send))
            return
        self.streams_in += stream
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

    def count_second(self):
        second = int(time.monotonic())
        if second != self.second:
            self.streams_in_before = self.streams_in if second == self.second + 1 else 0
            self.streams_in = 0
            self.second = second
            self.booked = {at: count for at, count in self.booked.items() if at > second}

    def stream_retry_ms(self) -> int:
        """When a stream turned away now should come back: in the first coming second with room."""
        # Twice what the last second took: a process that takes more sees more come, and the bookings
        # follow its pace up (a booked page turned away again is booked anew, later).
        room = max(STREAMS_A_SECOND_AT_LEAST, 2 * self.streams_in_before)
        at = self.second + 1
        while self.booked.get(at, 0) >= room and at < self.second + STREAM_RETRY_MAX_SECONDS:
            at += 1
        self.booked[at] = self.booked.get(at, 0) + 1
        moment = at + random.random()  # noqa: S311 (a delay, no secret)
        return round((moment - time.monotonic()) * 1000)

    async def turn_stream_away(self, send):
        self.count_shed()
        retry = self.stream_retry_ms()
        body = f"retry: {retry}\nevent: stream-busy\ndata: {json.dumps({'retry': retry})}\n\n".encode()
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def refuse(self, send):
        self.count_shed()
        headers = [(b"content-type", b"text/plain"), (b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": b"Busy for a moment: try again shortly.\n"})

    def count_shed(self):
        self.shed += 1
        now = time.monotonic()
        if now - self.logged_at >= LOG_EVERY_SECONDS:
            seconds = now - self.logged_at
            logger.warning("Shed %d requests in %.0f s: over %d at once", self.shed, seconds, self.max_pending)
            self.shed, self.logged_at = 0, now
