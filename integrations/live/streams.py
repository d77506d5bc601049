"""Open event streams: how many one user may hold and how long one lives, rules django-eventstream lacks."""

import asyncio
import json
import logging
import time
import uuid
from typing import NamedTuple

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signing

from integrations.live import eventstream

logger = logging.getLogger(__name__)

# A stream's first words: reconnect in one second rather than the browser's default three.
RECONNECT_SOON = "retry: 1000\n\n"
# The window a page spreads its reconnection over when its stream drops, at least (static/js/member_sync.js).
REOPEN_SPREAD_MIN_MS = 1000
REOPEN_SPREAD_MAX_MS = 60_000


class TooManyStreams(Exception):
    pass


# Open streams are counted in Redis, so that the cap holds across web processes. Each open stream is
# a member of two sorted sets (the user's and everyone's), scored by the time it expires at the
# latest: a process that dies without releasing its streams leaves no count behind for longer.
def _all_streams_key() -> str:
    return f"{settings.EVENTS_CHANNEL_PREFIX}open-streams"


def _user_streams_key(user_id) -> str:
    return f"{_all_streams_key()}:user-{user_id}"


class Claim(NamedTuple):
    id: str
    # Streams open in every web process, this one included, when it was claimed.
    streams_open: int


def claim_stream(user_id, *, until: float | None = None) -> Claim:
    """Count one more open stream for the user and return its claim, or raise TooManyStreams. It counts
    until released, or at the latest `until` (by default a minute after the longest a stream lives)."""
    stream, now = uuid.uuid4().hex, time.time()
    expires = until or now + settings.EVENTS_STREAM_MAX_SECONDS + 60
    user_key, all_key = _user_streams_key(user_id), _all_streams_key()
    with eventstream.EVENTS_REDIS.pipeline() as pipe:
        for key in (user_key, all_key):
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, {stream: expires})
            pipe.expire(key, settings.EVENTS_STREAM_MAX_SECONDS + 60)
        pipe.zcard(user_key)
        pipe.zcard(all_key)
        *_, users_streams, streams_open = pipe.execute()
    claim = Claim(stream, streams_open)
    if users_streams > settings.EVENTS_MAX_STREAMS_PER_USER:
        release_stream(user_id, claim)
        raise TooManyStreams
    return claim


def first_words(claim: Claim) -> str:
    """What a stream starts with: reconnect soon, and over how long a window to spread the reconnection
    if the stream drops (`stream-reopen`). A proxy restart drops every stream at once; spread over
    the time the site needs to open them all again (EVENTS_REOPENINGS_PER_SECOND), each page comes
    back about once. Before, thousands came back within a second and two of every three attempts
    were turned away (bench.pushpin_restart)."""
    spread = claim.streams_open / settings.EVENTS_REOPENINGS_PER_SECOND * 1000
    spread_ms = round(min(REOPEN_SPREAD_MAX_MS, max(REOPEN_SPREAD_MIN_MS, spread)))
    return f"{RECONNECT_SOON}event: stream-reopen\ndata: {json.dumps({'spread': spread_ms})}\n\n"


# Behind Pushpin no Django thread holds a stream: its end is signed into the next link Pushpin
# follows, and its claim expires then. (Pushpin 1.36, Debian's, does not tell Django when a client
# goes: its "gone" link came later. So a closed tab's claim counts until its stream would have ended.)
# The end is rounded down to a step shared by the streams opened in that step: identical next links
# are one request to Django for all their streams, and Pushpin's update limiter counts links (ten a
# second), not streams. A link of its own per stream made the first run's events reach 300 pages
# 15-30 s late (bench.cluster_streams).
END_PARAMETER = "es-ends"
_END_SIGNER = signing.Signer(salt="integrations.live.streams.proxied-stream-end")


def proxied_stream_end(now: float) -> int:
    step = max(1, min(60, settings.EVENTS_STREAM_MAX_SECONDS // 10))
    return int(now + settings.EVENTS_STREAM_MAX_SECONDS) // step * step


def signed_end(ends: int) -> str:
    return _END_SIGNER.sign(str(ends))


def end_of(value: str) -> int:
    """The end a next link carries; ValueError unless Django signed it."""
    try:
        return int(_END_SIGNER.unsign(value))
    except signing.BadSignature as error:
        raise ValueError("bad stream end") from error


def release_stream(user_id, claim: Claim) -> None:
    with eventstream.EVENTS_REDIS.pipeline() as pipe:
        pipe.zrem(_user_streams_key(user_id), claim.id)
        pipe.zrem(_all_streams_key(), claim.id)
        pipe.execute()


def open_stream_count() -> int:
    """Streams open now, in every web process."""
    return eventstream.EVENTS_REDIS.zcount(_all_streams_key(), time.time(), "+inf")


async def limited(chunks, read_again, *, user_id, claim: Claim):
    """The stream's chunks until it ends or reaches its maximum lifetime, then its claim released. The
    browser then reconnects by itself with Last-Event-ID and misses nothing: a stream that lasted
    forever would hold its claim, its thread and its access check forever."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.EVENTS_STREAM_MAX_SECONDS
    # One timer, not a timeout around every chunk (a task each: at a thousand streams that slowed
    # every event's fan-out): at the deadline the stream is made to read the storage again, which
    # ends its wait with a chunk (read_again), and the loop below ends it.
    timer = loop.call_at(deadline, read_again)
    try:
        yield first_words(claim)
        async for chunk in chunks:
            yield chunk
            if loop.time() >= deadline:
                break
    finally:
        timer.cancel()
        await chunks.aclose()
        await sync_to_async(_release_quietly, thread_sensitive=False)(user_id, claim)


def _release_quietly(user_id, claim):
    try:
        release_stream(user_id, claim)
    except redis.RedisError:
        logger.warning("Could not release an open stream of user %s; it expires by itself", user_id)
