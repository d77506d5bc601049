"""django-eventstream behind one module: the only one that imports it or django_grip, and gripcontrol
but for config (before Django loads, the settings parse GRIP_URL and asgi.py checks Pushpin's
signature with it). Pinned in requirements.txt: django-eventstream 5.3.4, django-grip 3.5.2 and
gripcontrol 4.4.0; tests/test_eventstream_adapter.py fails on others, or when an internal below changes.

The settings plug in RestartSafeRedisStorage and channels.TeamChannelManager. Internals used for want
of a public way, and what their change breaks:
- `views.get_listener_manager()`, the registry of open streams: its Redis listener dies on the first
  connection error, so `install` replaces its `redis_listener` (started by the first stream), which
  feeds its `add_to_queues`; kicks and replays walk its `listeners_by_channel` under its `lock`.
  Broken, the streams served here get no events.
- `views.Listener` and `views.stream`, put together as `events` does: at a stream's lifetime's end,
  `overflow` and `wake_threadsafe()` make it read the storage again, which ends its wait; a kick sets
  `error`. Broken, streams outlive their lifetime, or a removed member keeps reading.
- What send_event publishes on Redis: channel `events_channel`, a message of channel, event_type, data
  and pub_id. Broken, the streams served here get no events.
- The next link `events` gives Pushpin: es-meta (a JWT, HS256 with SECRET_KEY, naming the `user`),
  link and recover; publish_kick's GRIP channels (user-<id>, require_sub events-<channel>); and
  `request.grip.instruct.next_link_timeout`. Broken, Pushpin's streams are refused or held too long.
- `django_eventstream.utils`, which no `__init__` exports: sse_error_response, sse_encode_error,
  parse_last_event_id, add_default_headers, get_channelmanager.
"""

import asyncio
import json
import logging
import time
from functools import partial
from urllib.parse import quote

import jwt
import redis
import redis.asyncio
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django_eventstream import EventRequest
from django_eventstream import get_current_event_id as get_current_event_id
from django_eventstream import send_event as send_event
from django_eventstream.event import Event
from django_eventstream.utils import add_default_headers, get_channelmanager, sse_encode_error
from django_eventstream.utils import parse_last_event_id as parse_last_event_id
from django_eventstream.utils import sse_error_response as sse_error_response
from django_eventstream.views import Listener, events, get_listener_manager, stream
from django_grip import publish as grip_publish
from gripcontrol import HttpStreamFormat
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

# django-eventstream's own pub/sub channel for events, whatever the prefix
# (docs/architecture.md#library-pitfalls).
EVENTS_PUBSUB_CHANNEL = "events_channel"
# The next link's parameters (signed meta, recovery, paging): only Pushpin follows it.
NEXT_LINK_META = "es-meta"
NEXT_LINK_PARAMETERS = (NEXT_LINK_META, "recover", "link")
# The one denial of every refused or closed stream: the library's names the channel.
STREAM_DENIED = "Live updates are off: you cannot read the events of this team."
EVENTS_KEPT_SECONDS = 24 * 60 * 60  # as the library's RedisStorage: a day

# The events Redis (EVENTSTREAM_REDIS): one bounded pool a process, made with the module, which the
# storage, the kicks and the stream claims (integrations.live.streams) share. A burst of streams
# connecting at once (every tab after a deploy) waits for one of its connections, rather than failing
# once redis-py's default 100 are taken.
EVENTS_REDIS = redis.Redis(
    connection_pool=redis.BlockingConnectionPool(
        **settings.EVENTSTREAM_REDIS, max_connections=100, timeout=30, socket_timeout=5, socket_connect_timeout=5
    )
)


def kicks_pubsub_channel() -> str:
    # Closing a user's streams must reach every web process, not only the one that changed access.
    return f"{settings.EVENTS_CHANNEL_PREFIX}stream-kicks"


class RestartSafeRedisStorage:
    """The events kept for replay by id (EVENTSTREAM_STORAGE_CLASS), under the keys of the library's
    RedisStorage, for a Redis that can lose its data when it restarts.

    Without persistence a restarted Redis counts event ids from 1 again, and a page that had seen
    id 57 was sent nothing until the counter passed 57 (and the one event numbered 57 anew never).
    Here a channel's counter starts, whenever Redis has none, at the time in milliseconds: every id
    of a new start is above every id of the one before (unless a channel averaged more than an event
    a millisecond), and a page resuming from an older id is sent every event of the new start.
    """

    # The process's one bounded pool, not a client per storage: the library makes a storage per
    # thread, and a stream served here reads it from a thread of its own (the request's, for its whole
    # life), so a thousand open streams held a thousand Redis connections.
    redis = EVENTS_REDIS

    def append_event(self, channel, event_type, data):
        counter, start = f"event_counter:{channel}", time.time_ns() // 1_000_000
        with self.redis.pipeline() as pipe:
            pipe.set(f"event_counter_start:{channel}", start, nx=True)
            pipe.set(counter, start, nx=True)
            pipe.incr(counter)
            *_, event_id = pipe.execute()
        stored = json.dumps({"type": event_type, "data": data})
        self.redis.set(f"event:{channel}:{event_id}", stored, ex=EVENTS_KEPT_SECONDS)
        return Event(channel, event_type, data, id=event_id)

    def get_events(self, channel, last_id, limit=100):
        keys = f"event_counter_start:{channel}", f"event_counter:{channel}"
        start, current = (int(n or 0) for n in self.redis.mget(keys))
        if last_id < start or last_id > current:
            last_id = start
        ids = range(last_id + 1, min(last_id + limit, current) + 1)
        stored = self.redis.mget([f"event:{channel}:{n}" for n in ids]) if ids else []
        found = [(n, json.loads(event)) for n, event in zip(ids, stored, strict=True) if event]
        return [Event(channel, event["type"], event["data"], id=n) for n, event in found]

    def get_current_id(self, channel):
        return int(self.redis.get(f"event_counter:{channel}") or 0)


def stream_here(request, limit, **view_kwargs) -> StreamingHttpResponse:
    """The stream of the request's channels, served by this process as the `events` view serves it,
    its chunks passed through limit(chunks, read_again); read_again() makes it read the storage again."""
    event_request = EventRequest(request, view_kwargs=view_kwargs)
    listener = Listener()
    listener.user_id, listener.channels = request.user.pk, event_request.channels
    chunks = limit(stream(event_request, listener), partial(_read_storage_again, [listener]))
    response = StreamingHttpResponse(chunks, content_type="text/event-stream")
    add_default_headers(response, request=request)
    return response


def held_by_pushpin(request, *, back_by: float, **view_kwargs) -> tuple[HttpResponse, bool]:
    """The `events` view's answer to Pushpin: the stream's start and the GRIP instructions by which it
    holds the stream and follows the next link by `back_by` (True), or an error in their place (False)."""
    response = events(request, **view_kwargs)
    if instruct := request.grip.instruct:
        # No later than Pushpin's default of two minutes.
        instruct.next_link_timeout = max(1, min(120, round(back_by - time.time())))
    return response, instruct is not None


def next_link_user(request) -> str:
    """The user the next link Pushpin follows was issued to; ValueError if not signed here, or expired."""
    try:
        meta = jwt.decode(request.GET[NEXT_LINK_META], settings.SECRET_KEY, algorithms=["HS256"])
    except jwt.InvalidTokenError as error:
        raise ValueError("invalid or expired es-meta") from error
    return str(meta.get("user", ""))


def channel_permission_changed(user, channel: str) -> None:
    """The library's: close the user's open streams of the channel if the channel manager now refuses
    it (the library checks access as a stream reads the storage, not meanwhile). Here in every web
    process, not the library's own only, and with the denial every refused stream gets."""
    if get_channelmanager().can_read_channel(user, channel):
        return
    EVENTS_REDIS.publish(kicks_pubsub_channel(), json.dumps({"user": user.pk, "channel": channel}))
    if settings.GRIP_PROXIES:
        # Those Pushpin holds, as publish_kick closes them: the user's that also hold the channel.
        meta = {"require_sub": f"events-{quote(channel)}"}
        denial = sse_encode_error("forbidden", STREAM_DENIED)
        grip_publish(f"user-{user.pk}", HttpStreamFormat(denial), id="kick-1", meta=meta)
        grip_publish(f"user-{user.pk}", HttpStreamFormat(close=True), id="kick-2", prev_id="kick-1", meta=meta)


def install():
    """Before any stream opens: the registry of open streams gets a Redis listener that survives Redis."""
    get_listener_manager().redis_listener = ReconnectingRedisListener()


def _read_storage_again(listeners=None):
    """Make these open streams (by default all of this process's) read the storage again from their
    last event id: events published while this process was not listening are there."""
    manager = get_listener_manager()
    with manager.lock:
        if listeners is None:
            listeners = {listener for group in manager.listeners_by_channel.values() for listener in group}
        for listener in listeners:
            listener.overflow = True
            listener.wake_threadsafe()


def _close_here(user_id, channel):
    manager = get_listener_manager()
    with manager.lock:
        for listener in manager.listeners_by_channel.get(channel, ()):
            if listener.user_id == user_id:
                listener.error = {"condition": "forbidden", "text": STREAM_DENIED}
                listener.wake_threadsafe()


class ReconnectingRedisListener:
    """Receives what every process publishes on the events Redis, reconnecting with backoff, forever."""

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
                _read_storage_again()
            return
        if message["type"] != "message":
            return
        try:
            if message["channel"] == EVENTS_PUBSUB_CHANNEL.encode():
                published = json.loads(message["data"])
                event = Event(published["channel"], published["event_type"], published["data"], id=published["pub_id"])
                get_listener_manager().add_to_queues(published["channel"], event)
            else:
                kicked = json.loads(message["data"])
                _close_here(kicked["user"], kicked["channel"])
        except (ValueError, KeyError, TypeError):
            # Anyone who can write to this Redis can publish anything: one bad message must not end
            # the live updates of every page this process serves.
            logger.warning("Ignored a malformed message on %s", message["channel"])
