"""Open event streams: how many one user may hold, how long one lives, and how every web process
keeps receiving the events they carry when Redis goes away and comes back.

django-eventstream serves the streams; these are the rules it does not have. Its Redis listener is
started once per process and dies on the first connection error, after which no stream served by
that process gets another event; `TeamListenerManager` replaces it with one that reconnects and
replays what was published meanwhile from the event storage.
"""

import asyncio
import json
import logging
import threading
import time
import uuid
from typing import NamedTuple
from urllib.parse import quote

import redis
import redis.asyncio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signing
from django_eventstream import views as eventstream_views
from django_eventstream.event import Event
from django_eventstream.storage import RedisStorage
from django_eventstream.utils import sse_encode_error
from django_grip import publish as grip_publish
from gripcontrol import HttpStreamFormat
from redis.backoff import NoBackoff
from redis.retry import Retry

from integrations.live.channels import TeamChannelManager, team_channel

logger = logging.getLogger(__name__)

# django-eventstream's own pub/sub channel for events, whatever the prefix
# (docs/architecture.md#library-pitfalls).
EVENTS_PUBSUB_CHANNEL = "events_channel"
STREAM_DENIED = "Live updates are off: you cannot read the events of this team."
# A stream's first words: reconnect in one second rather than the browser's default three.
RECONNECT_SOON = "retry: 1000\n\n"
# The window a page spreads its reconnection over when its stream drops, at least (static/js/member_sync.js).
REOPEN_SPREAD_MIN_MS = 1000
REOPEN_SPREAD_MAX_MS = 60_000


class TooManyStreams(Exception):
    pass


def kicks_pubsub_channel() -> str:
    # Closing a user's streams must reach every web process, not only the one that changed access.
    return f"{settings.EVENTS_CHANNEL_PREFIX}stream-kicks"


# Open streams are counted in Redis, so that the cap holds across web processes. Each open stream is
# a member of two sorted sets (the user's and everyone's), scored by the time it expires at the
# latest: a process that dies without releasing its streams leaves no count behind for longer.

_registry = None
_registry_lock = threading.Lock()


def registry() -> redis.Redis:
    global _registry
    # Made once under a lock: a second client made by a racing thread would be collected, and a
    # collected client closes its pool's connections under the thread using them.
    with _registry_lock:
        if _registry is None:
            # A burst of streams connecting at once (every tab after a deploy) waits for one of a
            # bounded number of connections, rather than failing once redis-py's default 100 are taken.
            pool = redis.BlockingConnectionPool(
                **settings.EVENTSTREAM_REDIS,
                max_connections=100,
                timeout=30,
                socket_timeout=5,
                socket_connect_timeout=5,
            )
            _registry = redis.Redis(connection_pool=pool)
        return _registry


def _all_streams_key() -> str:
    return f"{settings.EVENTS_CHANNEL_PREFIX}open-streams"


def _user_streams_key(user_id) -> str:
    return f"{_all_streams_key()}:user-{user_id}"


class Claim(NamedTuple):
    id: str
    # Streams open in every web process, this one included, when it was claimed.
    streams_open: int


def claim_stream(user_id, *, until: float | None = None) -> Claim:
    """Count one more open stream for the user and return its claim, or raise TooManyStreams. The
    claim counts until it is released, or at the latest `until` (by default, a minute after the
    longest a stream lives)."""
    stream, now = uuid.uuid4().hex, time.time()
    expires = until or now + settings.EVENTS_STREAM_MAX_SECONDS + 60
    user_key, all_key = _user_streams_key(user_id), _all_streams_key()
    with registry().pipeline() as pipe:
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
    with registry().pipeline() as pipe:
        pipe.zrem(_user_streams_key(user_id), claim.id)
        pipe.zrem(_all_streams_key(), claim.id)
        pipe.execute()


def close_streams_if_denied(user, team_id: int) -> None:
    """Close the user's open streams of the team's channel, in every web process, if they may no
    longer read it. django-eventstream checks access only when a stream connects."""
    channel = team_channel(team_id)
    if not TeamChannelManager().can_read_channel(user, channel):
        registry().publish(kicks_pubsub_channel(), json.dumps({"user": user.pk, "channel": channel}))
        if settings.GRIP_PROXIES:
            kick_proxied_streams(user.pk, channel)


def kick_proxied_streams(user_id, channel: str) -> None:
    """Close the user's streams of this channel that Pushpin holds. django-eventstream's publish_kick,
    with the denial every other refused stream gets instead of a text naming the channel."""
    # Delivered only to the user's connections that also hold the channel (require_sub).
    meta = {"require_sub": f"events-{quote(channel)}"}
    denial = sse_encode_error("forbidden", STREAM_DENIED)
    grip_publish(f"user-{user_id}", HttpStreamFormat(denial), id="kick-1", meta=meta)
    grip_publish(f"user-{user_id}", HttpStreamFormat(close=True), id="kick-2", prev_id="kick-1", meta=meta)


def open_stream_count() -> int:
    """Streams open now, in every web process."""
    return registry().zcount(_all_streams_key(), time.time(), "+inf")


async def limited(stream, listener, *, user_id, claim: Claim):
    """The stream's chunks until it ends or reaches its maximum lifetime; then its claim is released.

    At the end of its life the browser reconnects by itself with Last-Event-ID and misses nothing:
    a stream that lasts forever would hold its claim, its thread and its access check forever.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.EVENTS_STREAM_MAX_SECONDS
    # One timer, not a timeout around every chunk (a task each: at a thousand streams that slowed
    # every event's fan-out): at the deadline the stream is made to read the storage again, which
    # ends its wait with a chunk, and the loop below ends it.
    timer = loop.call_at(deadline, eventstream_views.get_listener_manager().replay, [listener])
    try:
        yield first_words(claim)
        async for chunk in stream:
            yield chunk
            if loop.time() >= deadline:
                break
    finally:
        timer.cancel()
        await stream.aclose()
        await sync_to_async(_release_quietly, thread_sensitive=False)(user_id, claim)


def _release_quietly(user_id, claim):
    try:
        release_stream(user_id, claim)
    except redis.RedisError:
        logger.warning("Could not release an open stream of user %s; it expires by itself", user_id)


class RestartSafeRedisStorage(RedisStorage):
    """django-eventstream's Redis storage, for a Redis that can lose its data when it restarts.

    Without persistence a restarted Redis counts event ids from 1 again, and a page that had seen
    id 57 was sent nothing until the counter passed 57 (and the one event numbered 57 anew never).
    Here a channel's counter starts, whenever Redis has none, at the time in milliseconds: every id
    of a new start is above every id of the one before (unless a channel averaged more than an event
    a millisecond), and a page resuming from an older id is sent every event of the new start.
    """

    def _connect(self):
        # The process's one bounded pool, not a client per storage: django-eventstream makes a
        # storage per thread, and a stream served here reads it from a thread of its own (the
        # request's, for its whole life), so a thousand open streams held a thousand Redis connections.
        return registry()

    def append_event(self, channel, event_type, data):
        start = str(time.time_ns() // 1_000_000)
        with self.redis.pipeline() as pipe:
            pipe.set(self._start_key(channel), start, nx=True)
            pipe.set(f"event_counter:{channel}", start, nx=True)
            pipe.execute()
        return super().append_event(channel, event_type, data)

    def get_events(self, channel, last_id, limit=100):
        start = int(self.redis.get(self._start_key(channel)) or 0)
        if last_id < start or last_id > self.get_current_id(channel):
            last_id = start
        return super().get_events(channel, last_id, limit=limit)

    @staticmethod
    def _start_key(channel):
        return f"event_counter_start:{channel}"


class TeamListenerManager(eventstream_views.ListenerManager):
    """django-eventstream's registry of this process's open streams, with a listener that survives
    Redis, kicks that reach every process, and a denial that names no channel."""

    def __init__(self):
        super().__init__()
        self.redis_listener = ReconnectingRedisListener(self)

    def kick(self, user_id, channel):
        with self.lock:
            kicked = [
                listener for listener in self.listeners_by_channel.get(channel, ()) if listener.user_id == user_id
            ]
            for listener in kicked:
                listener.error = {"condition": "forbidden", "text": STREAM_DENIED}
                listener.wake_threadsafe()

    def replay(self, listeners=None):
        """Make these open streams (by default all of this process's) read the storage again from
        their last event id: events published while this process was not listening are there."""
        with self.lock:
            if listeners is None:
                listeners = {listener for group in self.listeners_by_channel.values() for listener in group}
            for listener in listeners:
                listener.overflow = True  # django-eventstream's way to say "read the storage again"
                listener.wake_threadsafe()


class ReconnectingRedisListener:
    """Receives what every process publishes on Redis, reconnecting with backoff for as long as the
    web process lives."""

    def __init__(self, manager):
        self.manager = manager
        self.task = None

    async def start(self):
        # The event loop keeps only a weak reference to a task: this one must not be collected.
        self.task = asyncio.current_task()
        delay = 0.1
        while True:
            # No retries inside redis-py: they give up after a few seconds and end this task; this
            # loop retries for as long as the process lives, and replays once subscribed again.
            client = redis.asyncio.Redis(**{**settings.EVENTSTREAM_REDIS, "retry": Retry(NoBackoff(), 0)})
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(EVENTS_PUBSUB_CHANNEL, kicks_pubsub_channel())
                async for message in pubsub.listen():
                    delay = 0.1
                    self.receive(message)
            except (redis.RedisError, OSError) as error:
                logger.warning("Lost the events Redis (%s); reconnecting in %.1f s", error, delay)
            finally:
                await client.aclose()
            await asyncio.sleep(delay)
            # At most a second: a page shows what was published while Redis was away once this
            # process listens again, within seconds of Redis answering (docs/reliability.md#faults).
            delay = min(delay * 2, 1.0)

    def receive(self, message):
        if message["type"] == "subscribe":
            # Subscribed anew (the first time, or after a reconnection, ours or redis-py's own):
            # whatever was published while this process was not subscribed is in the storage.
            if message["channel"] == EVENTS_PUBSUB_CHANNEL.encode():
                logger.info("Listening to the events Redis")
                self.manager.replay()
            return
        if message["type"] != "message":
            return
        try:
            if message["channel"] == EVENTS_PUBSUB_CHANNEL.encode():
                published = json.loads(message["data"])
                event = Event(published["channel"], published["event_type"], published["data"], id=published["pub_id"])
                self.manager.add_to_queues(published["channel"], event)
            else:
                kick = json.loads(message["data"])
                self.manager.kick(kick["user"], kick["channel"])
        except (ValueError, KeyError, TypeError):
            # Anyone who can write to this Redis can publish anything: one bad message must not end
            # the live updates of every page this process serves.
            logger.warning("Ignored a malformed message on %s", message["channel"])


def install():
    """Put TeamListenerManager in place of django-eventstream's, before any stream opens."""
    eventstream_views.listener_manager = TeamListenerManager()
