"""A web process works on a bounded number of requests at once and answers the rest with 503 and a
Retry-After at once (ops/shedding.py). The app behind it here is a stand-in whose requests wait until
the test lets them answer: what a request stuck on the database looks like from the door."""

import asyncio
import time
from collections import Counter, deque

from ops.shedding import LoadShedding


class HeldApp:
    """An ASGI app whose requests answer when released."""

    def __init__(self):
        self.release = asyncio.Event()

    async def __call__(self, scope, receive, send):
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def request(app, path, query=b""):
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "path": path, "query_string": query, "method": "GET", "headers": []}
    await app(scope, receive, send)
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(message.get("body", b"") for message in sent[1:])


def test_requests_over_the_limit_are_answered_503_with_a_retry_after_at_once():
    async def scenario():
        held = HeldApp()
        app = LoadShedding(held, max_pending=4)
        working = [asyncio.create_task(request(app, "/t/acme/github/members/")) for _ in range(4)]
        await asyncio.sleep(0)  # they are all in

        refused = await request(app, "/accounts/login/")

        held.release.set()
        return refused, await asyncio.gather(*working)

    (status, headers, _), answered = asyncio.run(scenario())

    assert status == 503
    assert headers[b"retry-after"] == b"2"
    assert [status for status, *_ in answered] == [200] * 4


def test_event_streams_opening_get_a_quarter_and_pages_still_get_through():
    """A stream turned away is answered in the stream, which is all an EventSource reads: come back later."""

    async def scenario():
        held = HeldApp()
        app = LoadShedding(held, max_pending=8, stream_wait_seconds=0)
        streams = [asyncio.create_task(request(app, "/t/acme/events/")) for _ in range(2)]
        await asyncio.sleep(0)
        page = asyncio.create_task(request(app, "/t/acme/github/members/"))
        await asyncio.sleep(0)

        third_stream = await request(app, "/t/acme/events/")

        held.release.set()
        return third_stream, await asyncio.gather(*streams), await page

    (status, headers, body), streams, (page_status, *_) = asyncio.run(scenario())

    assert (status, headers[b"content-type"]) == (200, b"text/event-stream")
    assert b"event: stream-busy" in body
    assert [(status, body) for status, _, body in streams] == [(200, b"ok")] * 2
    assert page_status == 200


def test_streams_turned_away_are_booked_into_the_coming_seconds_twice_as_many_a_second_as_were_let_in():
    app = LoadShedding(HeldApp(), max_pending=4)
    app.count_second()
    app.streams_in_before = 50

    retries = [app.stream_retry_ms() for _ in range(1000)]

    seconds = Counter(retry // 1000 for retry in retries)
    assert all(0 <= retry <= 11_000 for retry in retries)
    assert max(seconds.values()) <= 200  # a booked second, partly spilling into the next: ~100 each
    assert sum(app.booked.values()) == 1000
    assert len(app.booked) == 10


def test_streams_turned_away_after_a_quiet_spell_are_booked_at_the_best_pace_the_process_has_kept():
    """After a proxy restart the last second let nothing in: the pages come back at the pace the
    process has shown, not at the floor's."""
    app = LoadShedding(HeldApp(), max_pending=4)
    app.second, app.streams_in = int(time.monotonic()) - 5, 300  # a busy second, then quiet ones
    app.count_second()

    retries = [app.stream_retry_ms() for _ in range(3000)]

    assert app.streams_in_before == 0
    assert max(retries) <= 11_000  # 300 a second: ten seconds, not the floor's 30
    assert len(app.booked) == 10


def test_a_request_stops_counting_once_its_response_starts():
    async def scenario():
        held = HeldApp()
        app = LoadShedding(held, max_pending=1)
        held.release.set()
        first = await request(app, "/t/acme/events/")
        return first, await request(app, "/t/acme/events/"), app.pending

    first, second, pending = asyncio.run(scenario())

    assert (first[0], second[0], pending) == (200, 200, 0)


def test_a_request_that_fails_stops_counting():
    async def broken(scope, receive, send):
        raise RuntimeError("the view failed")

    async def scenario():
        app = LoadShedding(broken, max_pending=1)
        try:
            await request(app, "/accounts/login/")
        except RuntimeError:
            pass
        return app.pending

    assert asyncio.run(scenario()) == 0


def test_pushpin_following_a_streams_next_link_is_never_turned_away():
    async def scenario():
        held = HeldApp()
        app = LoadShedding(held, max_pending=4)
        working = [asyncio.create_task(request(app, "/t/acme/events/")) for _ in range(4)]
        await asyncio.sleep(0)
        follow = asyncio.create_task(request(app, "/t/acme/events/", b"link=next&recover=true&es-meta=x.y.z"))
        await asyncio.sleep(0)
        held.release.set()
        await asyncio.gather(*working)
        return await follow

    status, _, body = asyncio.run(scenario())

    assert (status, body) == (200, b"ok")


def test_a_stream_over_its_quarter_waits_in_line_and_opens_once_one_before_it_has():
    async def scenario():
        held = HeldApp()
        app = LoadShedding(held, max_pending=8)
        opening = [asyncio.create_task(request(app, "/t/acme/events/")) for _ in range(2)]
        await asyncio.sleep(0)
        waits = asyncio.create_task(request(app, "/t/acme/events/"))
        await asyncio.sleep(0)
        in_line = len(app.waiting)

        held.release.set()
        return in_line, await waits, await asyncio.gather(*opening), (app.pending, app.pending_streams, app.waiting)

    in_line, (status, _, body), opened, counts = asyncio.run(scenario())

    assert in_line == 1
    assert (status, body) == (200, b"ok")
    assert [body for _, _, body in opened] == [b"ok", b"ok"]
    assert counts == (0, 0, deque())


def test_a_stream_that_waits_too_long_is_turned_away_and_told_when_to_come_back():
    async def scenario():
        held = HeldApp()
        app = LoadShedding(held, max_pending=4, stream_wait_seconds=0.05)
        opening = asyncio.create_task(request(app, "/t/acme/events/"))
        await asyncio.sleep(0)

        turned_away = await request(app, "/t/acme/events/")

        held.release.set()
        await opening
        return turned_away, (app.pending, app.waiting)

    (status, _, body), counts = asyncio.run(scenario())

    assert status == 200
    assert b"event: stream-busy" in body
    assert counts == (0, deque())


def test_the_line_holds_no_more_than_the_process_takes_in_the_wait():
    """At its last second's pace, and at least STREAMS_A_SECOND_AT_LEAST (20) a second: here 20 in a
    one-second wait, the process having let one in."""

    async def scenario():
        held = HeldApp()
        app = LoadShedding(held, max_pending=4, stream_wait_seconds=1)
        opening = asyncio.create_task(request(app, "/t/acme/events/"))
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(request(app, "/t/acme/events/")) for _ in range(20)]
        await asyncio.sleep(0)

        one_too_many = await request(app, "/t/acme/events/")

        in_line = len(app.waiting)
        held.release.set()
        answers = await asyncio.gather(opening, *waiting)
        return one_too_many, in_line, answers

    (_, _, body), in_line, answers = asyncio.run(scenario())

    assert b"event: stream-busy" in body
    assert in_line == 20
    assert [body for _, _, body in answers] == [b"ok"] * 21


def test_a_stream_cancelled_while_waiting_leaves_no_count_behind():
    async def scenario():
        held = HeldApp()
        app = LoadShedding(held, max_pending=4)
        opening = asyncio.create_task(request(app, "/t/acme/events/"))
        await asyncio.sleep(0)
        waits = asyncio.create_task(request(app, "/t/acme/events/"))
        await asyncio.sleep(0)

        waits.cancel()
        held.release.set()
        await opening
        await asyncio.gather(waits, return_exceptions=True)
        return app.pending, app.pending_streams, app.waiting

    assert asyncio.run(scenario()) == (0, 0, deque())
