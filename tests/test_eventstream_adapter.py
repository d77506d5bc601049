"""What integrations.live.eventstream relies on in django-eventstream, django-grip and gripcontrol,
checked without Redis or Pushpin: an upgrade fails here, naming what to read again in the library's
source, rather than in production. The adapter's docstring says why each internal is used."""

import asyncio
import inspect
import json
import re
import time
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

import django_grip
import pytest
from django.http import QueryDict
from django.test import RequestFactory
from django_eventstream import EventResponse, channelmanager, storage, utils, views
from django_eventstream import eventstream as library
from django_eventstream.event import Event

from integrations.live import eventstream
from integrations.live.channels import TeamChannelManager, team_channel

# The versions the adapter was last checked against. To upgrade one, read the library's source again
# for each internal the adapter's docstring lists, then change the pin here and in requirements.txt.
CHECKED = {"django-eventstream": "5.3.4", "django-grip": "3.5.2", "gripcontrol": "4.4.0"}
READ_AGAIN = "read the internals integrations/live/eventstream.py lists again in the library's source"
REQUIREMENTS = (Path(__file__).resolve().parent.parent / "requirements.txt").read_text()


@pytest.mark.parametrize(("package", "checked"), CHECKED.items())
def test_the_library_is_the_version_the_adapter_was_checked_against(package, checked):
    assert version(package) == checked, f"{package} {version(package)} is installed, not {checked}: {READ_AGAIN}"
    assert f"\n{package}=={checked}\n" in REQUIREMENTS
    assert f"{package} {checked}" in eventstream.__doc__


@pytest.mark.parametrize(
    ("ours", "base"),
    [
        (eventstream.RestartSafeRedisStorage, storage.StorageBase),
        (TeamChannelManager, channelmanager.ChannelManagerBase),
    ],
)
def test_the_classes_the_settings_plug_in_have_every_method_the_library_calls(ours, base):
    for name, method in inspect.getmembers(base, inspect.isfunction):
        if not name.startswith("_"):
            assert hasattr(ours, name), f"{base.__name__}.{name} is new: {READ_AGAIN}"
            assert inspect.signature(getattr(ours, name)) == inspect.signature(method), f"{base.__name__}.{name}"


@pytest.mark.parametrize(
    ("function", "arguments"),
    [
        (library.send_event, "channel, event_type, data"),
        (library.get_current_event_id, "channels"),
        (views.events, "request"),
        (views.stream, "event_request, listener"),
        (utils.parse_last_event_id, "s"),
        (utils.sse_error_response, "condition, text"),
        (utils.sse_encode_error, "condition, text"),
        (utils.add_default_headers, "headers, request"),
        (django_grip.publish, "channel, formats, id, prev_id"),
    ],
)
def test_what_the_adapter_calls_takes_the_arguments_it_is_given(function, arguments):
    names = arguments.split(", ")
    signature = list(inspect.signature(function).parameters)
    assert signature[: len(names)] == names, f"{function.__qualname__}{signature}: {READ_AGAIN}"


def storage_read(reads):
    """The library's storage read (get_events), counted, finding no event."""

    def get_events(event_request):
        reads.append(event_request)
        response = EventResponse()
        response.channel_items = {channel: [] for channel in event_request.channels}
        response.channel_last_ids = dict.fromkeys(event_request.channels, "1")
        response.user = event_request.user
        return response

    return get_events


def member_request(**grip):
    request = RequestFactory().get("/t/acme/events/")
    request.user = SimpleNamespace(pk=7, id=7, is_authenticated=True)
    request.grip = django_grip.GripData()
    vars(request.grip).update(grip)
    return request


def test_a_stream_served_here_gets_events_storage_reads_and_kicks_through_the_registry(monkeypatch):
    """The registry of open streams (its redis_listener, add_to_queues, listeners_by_channel, lock), a
    Listener (user_id, overflow, error, wake_threadsafe) in the library's stream, and the message
    send_event publishes on Redis."""
    reads, published, started = [], [], []
    monkeypatch.setattr(library, "get_events", storage_read(reads))
    monkeypatch.setattr(
        library, "get_storage", lambda: SimpleNamespace(append_event=lambda *event: Event(*event, id=2))
    )
    monkeypatch.setattr(library, "redis_client", SimpleNamespace(publish=lambda *message: published.append(message)))
    monkeypatch.setattr(library, "publish_event", lambda *args, **kwargs: None)  # to Pushpin
    monkeypatch.setattr(views, "listener_manager", views.ListenerManager())
    eventstream.install()
    listener = views.get_listener_manager().redis_listener
    assert isinstance(listener, eventstream.ReconnectingRedisListener)

    async def start():
        started.append(True)

    def limit(chunks, read_again):
        served.update(chunks=chunks, read_again=read_again)
        return chunks

    monkeypatch.setattr(listener, "start", start)
    channel, served = team_channel(5), {}
    eventstream.stream_here(member_request(), limit, team_id=5)

    async def read_stream(chunks):
        async def once_waiting(then):
            """The stream's next chunk, when `then` happens while the stream waits."""
            chunk = asyncio.ensure_future(anext(chunks))
            await asyncio.sleep(0)
            then()
            return await chunk

        assert "event: stream-open" in await anext(chunks)
        await asyncio.sleep(0)
        assert started, f"the registry did not start its redis_listener: {READ_AGAIN}"

        eventstream.send_event(channel, "member-sync", {"run": 1})
        [(pubsub_channel, message)] = published
        event = {"type": "message", "channel": pubsub_channel.encode(), "data": message}
        chunk = await once_waiting(lambda: listener.receive(event))
        assert chunk == f'event: member-sync\nid: {quote(channel)}:2\ndata: {{"run": 1}}\n\n'

        assert await once_waiting(served["read_again"]) == ""
        assert len(reads) == 2, f"read_again did not make the stream read the storage: {READ_AGAIN}"

        kick = {"type": "message", "channel": eventstream.kicks_pubsub_channel().encode()}
        kick["data"] = json.dumps({"user": 7, "channel": channel})
        chunk = await once_waiting(lambda: listener.receive(kick))
        assert eventstream.STREAM_DENIED in chunk, f"a kick closed no stream: {READ_AGAIN}"
        await chunks.aclose()

    asyncio.run(read_stream(served["chunks"]))


def test_pushpin_follows_the_next_link_signed_for_the_user_by_the_streams_end(monkeypatch):
    """The next link's parameters and es-meta, its GRIP channels, and request.grip.instruct's
    next_link_timeout as django_grip's middleware hands it to Pushpin."""
    monkeypatch.setattr(library, "get_events", storage_read([]))
    request = member_request(proxied=True)

    response, held = eventstream.held_by_pushpin(request, back_by=time.time() + 30.4, team_id=5)

    assert held
    channels = {channel.name: channel.filters for channel in request.grip.instruct.channels}
    assert channels == {f"events-{quote(team_channel(5))}": ["build-id", "skip-users"], "user-7": ["require-sub"]}
    headers = django_grip.GripMiddleware(lambda request: None).process_response(request, response)
    link, timeout = re.fullmatch(r"<(.*)>; rel=next; timeout=(\d+)", headers["Grip-Link"]).groups()
    assert timeout == "30"
    query = QueryDict(urlsplit(link).query)
    assert set(query) == set(eventstream.NEXT_LINK_PARAMETERS), f"the next link's parameters changed: {READ_AGAIN}"
    assert eventstream.next_link_user(SimpleNamespace(GET=query)) == "7", f"es-meta changed: {READ_AGAIN}"


def test_a_kick_pushpin_delivers_is_the_librarys_with_the_one_denial(monkeypatch, settings):
    settings.GRIP_PROXIES = [{"control_uri": "http://pushpin.invalid/"}]
    monkeypatch.setattr(eventstream, "EVENTS_REDIS", SimpleNamespace(publish=lambda *message: None))
    libraries, ours = [], []
    monkeypatch.setattr(django_grip, "publish", lambda *args, **kwargs: libraries.append((args, kwargs)))
    monkeypatch.setattr(eventstream, "grip_publish", lambda *args, **kwargs: ours.append((args, kwargs)))

    utils.publish_kick(7, "team-5")
    eventstream.channel_permission_changed(SimpleNamespace(pk=7), "team-5")  # no team's: refused

    def sent(publishes):
        return [(channel, content.close, kwargs) for (channel, content), kwargs in publishes]

    assert sent(ours) == sent(libraries), f"publish_kick changed: {READ_AGAIN}"
    assert eventstream.STREAM_DENIED in ours[0][0][1].content
