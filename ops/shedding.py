"""Load shedding at the door of each web process, before Django.

After a proxy restart every open page reconnects at once. A web process that takes every request
piles them up (a thread each, each waiting on the database and Redis pools) and answers none of them
in time, and Pushpin, whose queue of requests to the web processes is fixed at 100, then answers 502
to every page of the site, not only the streams. Here a process works on at most
WEB_MAX_PENDING_REQUESTS requests at a time, event streams opening on at most a quarter of them, and
answers the rest at once. A request counts until its response starts, so a stream served by Django
for minutes counts only while it opens.

A stream opening over its quarter first waits in line, for at most STREAM_WAIT_SECONDS, and opens as
soon as one before it has: a stream turned away costs Pushpin a whole request (about 3 ms of CPU, as
much as half an opening), and turned-away streams were about two of every three a storm's pages made
(bench.pushpin_restart). The line holds no more than the process took in that long at its last
second's pace, so that nobody waits in it for a turn that cannot come in time.

A page's stream turned away is told when to come back, in the stream itself (an EventSource reads no
status or header): a `stream-busy` event and the SSE `retry` field, a moment booked in the first
coming second with room (stream_retry_ms). Thousands of pages are so spread over the time the process
needs to take them, about one attempt each, instead of each trying again blind every few seconds
(measured: 5,000 pages made 62,000 attempts, and Pushpin spent a core passing them on). Any other
request gets 503 with a Retry-After.

Hand-written: uvicorn's --limit-concurrency counts open connections (Pushpin keeps its own open) and
answers with no Retry-After; the ASGI middleware packages found limit rates, not work in progress.
"""

import asyncio
import json
import logging
import random
import time
from collections import deque

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2
# Half the page's 10 s for a stream to open (static/js/member_sync.js), the rest for the opening
# itself and the way through Pushpin.
STREAM_WAIT_SECONDS = 5
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
    def __init__(self, app, *, max_pending: int, stream_wait_seconds: float = STREAM_WAIT_SECONDS):
        self.app = app
        self.max_pending = max_pending
        self.max_pending_streams = max(1, max_pending // 4)
        self.stream_wait_seconds = stream_wait_seconds
        self.pending = self.pending_streams = 0
        # Streams waiting for room, first come first in: each a future set once it is let in.
        self.waiting: deque[asyncio.Future] = deque()
        self.shed = 0
        self.logged_at = time.monotonic()
        # Streams let in during the current second and the one before; streams booked to come back,
        # by second.
        self.second = int(time.monotonic())
        self.streams_in = self.streams_in_before = 0
        # The most streams let in within one second so far: the pace the process has shown it keeps.
        self.best_second = 0
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
        if stream and (self.waiting or self.busy(stream=True)):
            if not await self.wait_for_room():
                await self.turn_stream_away(send)
                return
        elif not follows and self.busy(stream=stream):
            await self.refuse(send)
            return
        else:
            self.let_in(stream)
        counted = True

        def done():
            nonlocal counted
            if counted:
                counted = False
                self.release(stream)

        async def send_counting(message):
            if message["type"] == "http.response.start":
                done()
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            done()

    def busy(self, *, stream: bool) -> bool:
        return self.pending >= self.max_pending or (stream and self.pending_streams >= self.max_pending_streams)

    def let_in(self, stream: bool):
        # One event loop per process: these counts need no lock.
        self.pending += 1
        self.pending_streams += stream
        self.streams_in += stream

    async def wait_for_room(self) -> bool:
        """Whether a stream was let in within the wait, in its turn (and so counted in)."""
        if len(self.waiting) >= max(STREAMS_A_SECOND_AT_LEAST, self.streams_in_before) * self.stream_wait_seconds:
            return False
        room = asyncio.get_running_loop().create_future()
        self.waiting.append(room)
        try:
            # Shielded: a turn given at the moment the wait ends is still taken, never lost with it.
            await asyncio.wait_for(asyncio.shield(room), self.stream_wait_seconds)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            if room.done():
                self.release(stream=True)
            raise
        finally:
            if not room.done():
                room.cancel()
                self.waiting.remove(room)
        return not room.cancelled()

    def release(self, stream: bool):
        self.pending -= 1
        self.pending_streams -= stream
        self.let_waiting_in()

    def let_waiting_in(self):
        while self.waiting and not self.busy(stream=True):
            room = self.waiting.popleft()
            self.let_in(stream=True)
            room.set_result(None)

    def count_second(self):
        second = int(time.monotonic())
        if second != self.second:
            self.best_second = max(self.best_second, self.streams_in)
            self.streams_in_before = self.streams_in if second == self.second + 1 else 0
            self.streams_in = 0
            self.second = second
            self.booked = {at: count for at, count in self.booked.items() if at > second}

    def stream_retry_ms(self) -> int:
        """When a stream turned away now should come back: in the first coming second with room."""
        # Twice what the last second took: a process that takes more sees more come, and the bookings
        # follow its pace up (a booked page turned away again is booked anew, later). At least its
        # best second: right after a proxy restart the last seconds took nothing, and thousands of
        # pages booked at the floor's pace were spread over half a minute (bench.pushpin_restart).
        room = max(STREAMS_A_SECOND_AT_LEAST, 2 * self.streams_in_before, self.best_second)
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
