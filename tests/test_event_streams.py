"""The rules of a team's event stream: who is refused and how, how many one user holds, how long one
lives, and what keeps every web process's streams alive and their events whole (bad messages,
removed members, Redis restarts). Real uvicorn processes and Redis, and an SSE client over HTTP."""

import json
import threading

import pytest
import redis
from django.conf import settings
from django_eventstream.utils import get_storage

from bench.stream_clients import EventStream
from integrations.live import eventstream, streams
from integrations.live.channels import current_event_id, team_channel
from integrations.member_sync.run_events import publish_member_sync
from integrations.member_sync.tasks import sync_github_members
from integrations.models import MemberSyncRun
from tests.helpers import wait_for
from tests.stack import (
    github_environment,
    own_redis,
    session_cookies,
    stack_environment,
    web_server,
    worker,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_open_streams():
    """Streams this test run counted in Redis are forgotten, so that each test starts at zero."""
    yield
    registry = eventstream.EVENTS_REDIS
    for key in registry.scan_iter(f"{settings.EVENTS_CHANNEL_PREFIX}open-streams*"):
        registry.delete(key)


def run_event(integration, team):
    run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status=MemberSyncRun.Status.COMPLETE)
    publish_member_sync(run)
    return run


def stream_error(response):
    event = dict(line.split(": ", 1) for line in response.content.decode().splitlines() if ": " in line)
    assert event["event"] == "stream-error"
    return json.loads(event["data"])


def test_no_such_team_and_not_your_team_get_one_denial(client, charlie, team):
    client.force_login(charlie)

    not_yours = client.get("/t/acme/events/")
    no_such_team = client.get("/t/no-such-team/events/")
    client.logout()
    anonymous = client.get("/t/acme/events/")

    assert not_yours.content == no_such_team.content == anonymous.content
    assert stream_error(not_yours) == {"condition": "forbidden", "text": eventstream.STREAM_DENIED}
    assert str(team.pk) not in not_yours.content.decode().replace("stream-error", "")


@pytest.mark.parametrize("parameters", [{"es-meta": "garbage"}, {"recover": "true"}, {"link": "next"}])
def test_parameters_for_a_proxy_are_a_bad_request(client, alice, team, parameters):
    client.force_login(alice)

    assert client.get("/t/acme/events/", parameters).status_code == 400


@pytest.mark.parametrize("last_event_id", ["garbage", "error", "a:b:c", "team-1:abc", "team-1:-3", ":"])
def test_a_malformed_last_event_id_is_a_bad_request(client, alice, team, last_event_id):
    client.force_login(alice)

    assert client.get("/t/acme/events/", {"lastEventId": last_event_id}).status_code == 400
    assert client.get("/t/acme/events/", headers={"last-event-id": last_event_id}).status_code == 400


@pytest.mark.parametrize(
    "event_id",
    [
        "9" * 5000,  # Python will not read an int of more than 4,300 digits: the stream failed mid-way
        "1" * 20,  # more than the 64-bit ids the events Redis counts with
        "١٢٣",  # Arabic-Indic digits, which str.isdecimal() took for a number
        "1," + "x" * 20_000 + ":1",  # absurdly long, though well formed
        "1:2",  # malformed
    ],
)
def test_an_oversized_non_ascii_or_malformed_event_id_of_the_teams_channel_is_a_bad_request(
    client, alice, team, event_id
):
    client.force_login(alice)
    last_event_id = f"{team_channel(team.pk)}:{event_id}"

    assert client.get("/t/acme/events/", {"lastEventId": last_event_id}).status_code == 400
    assert client.get("/t/acme/events/", headers={"last-event-id": last_event_id}).status_code == 400


def test_a_stream_over_the_users_cap_is_refused(client, alice, bob, team, settings):
    settings.EVENTS_MAX_STREAMS_PER_USER = 2
    for _ in range(2):
        streams.claim_stream(alice.pk)
    client.force_login(alice)

    refused = client.get("/t/acme/events/")

    assert stream_error(refused)["condition"] == "too-many-streams"
    assert "Live updates are off" in stream_error(refused)["text"]
    client.force_login(bob)
    assert client.get("/t/acme/events/").streaming


def test_a_stream_ends_at_its_lifetime_and_resumes_without_a_gap(alice, team, integration, broker):
    """Costs about 5 s: a web server of its own, and a stream waited out to the end of its (shortened)
    lifetime."""
    env = stack_environment(EVENTS_STREAM_MAX_SECONDS=2)
    with web_server(env) as web:
        url, cookies = f"{web.url}/t/acme/events/", session_cookies(alice)
        stream = EventStream(url, cookies=cookies, last_event_id=current_event_id(team.pk))
        stream.next("stream-open")
        with pytest.raises(AssertionError, match="closed"):
            stream.next(timeout=15)
        wait_for(lambda: streams.open_stream_count() == 0, message="the ended stream to be released")

        missed = run_event(integration, team)
        resumed = EventStream(url, cookies=cookies, last_event_id=stream.last_event_id)
        assert resumed.next()["run"] == missed.pk
        resumed.close()


def test_a_malformed_message_on_redis_does_not_stop_live_events(alice, team, integration, broker):
    """Costs a few seconds: a web server of its own."""
    with web_server(stack_environment()) as web:
        stream = EventStream(f"{web.url}/t/acme/events/", cookies=session_cookies(alice))
        stream.next("stream-open")
        bus = redis.Redis(**settings.EVENTSTREAM_REDIS)
        for garbage in (b"not json", b"[1, 2]", b'{"channel": "x"}', b"\xff\xfe"):
            bus.publish(eventstream.EVENTS_PUBSUB_CHANNEL, garbage)
            bus.publish(eventstream.kicks_pubsub_channel(), garbage)

        run = run_event(integration, team)

        assert stream.next()["run"] == run.pk
        stream.close()


def test_a_removed_member_loses_their_streams_in_every_web_process(alice, bob, team, integration, broker):
    """Costs a few seconds: two web servers of its own."""
    env = stack_environment()
    with web_server(env) as one, web_server(env) as two:
        removed = [EventStream(f"{web.url}/t/acme/events/", cookies=session_cookies(bob)) for web in (one, two)]
        stays = EventStream(f"{two.url}/t/acme/events/", cookies=session_cookies(alice))
        for stream in (*removed, stays):
            stream.next("stream-open")

        team.memberships.get(user=bob).delete()

        for stream in removed:
            assert stream.next("stream-error") == {"condition": "forbidden", "text": eventstream.STREAM_DENIED}
        run = run_event(integration, team)
        assert stays.next()["run"] == run.pk
        stays.close()


def test_a_stream_resuming_after_redis_lost_its_events_gets_every_newer_one():
    with own_redis() as events_redis:
        storage = eventstream.RestartSafeRedisStorage()
        storage.redis = redis.Redis.from_url(events_redis.url)
        for number in range(5):
            storage.append_event("acme", "member-sync", {"number": number})
        seen = storage.get_current_id("acme")

        events_redis.restart()
        for number in range(5, 7):
            storage.append_event("acme", "member-sync", {"number": number})

        assert [event.data["number"] for event in storage.get_events("acme", seen)] == [5, 6]


def test_a_run_that_ends_while_the_events_redis_restarts_still_reaches_the_page(alice, integration, github, broker):
    """Costs about 7 s: a Redis of its own stopped and started again under a web server and a worker."""
    github.add_org("acme", size=1000)
    github.org("acme").hold(after=100)
    with own_redis() as events_redis:
        env = stack_environment(EVENTS_REDIS_URL=events_redis.url, **github_environment(github))
        with web_server(env) as web, worker(env):
            page = EventStream(f"{web.url}/t/acme/events/", cookies=session_cookies(alice))
            page.next("stream-open")
            run = MemberSyncRun.objects.create(integration=integration, trigger="manual")
            sync_github_members.send(run.pk)
            page.next(where=lambda data: data["status"] == "syncing")

            # Down when the run ends: its last event is the one a page must not miss.
            events_redis.stop()
            github.org("acme").release()
            wait_for(lambda: MemberSyncRun.objects.get(pk=run.pk).status == "complete", message="the run to end")
            events_redis.start()

            assert page.next(where=lambda data: data["status"] == "complete")["run"] == run.pk


def test_the_event_storage_of_every_thread_shares_the_process_redis_pool():
    # django-eventstream makes a storage per thread, and an open stream reads it from a thread of its own.
    storages = []
    threads = [threading.Thread(target=lambda: storages.append(get_storage())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(storage) for storage in storages}) == 3
    assert all(storage.redis is eventstream.EVENTS_REDIS for storage in storages)


def test_a_removal_that_is_rolled_back_closes_no_stream(alice, bob, team, integration, broker):
    """Costs a few seconds: a web server of its own."""
    from django.db import transaction

    with web_server(stack_environment()) as web:
        stream = EventStream(f"{web.url}/t/acme/events/", cookies=session_cookies(bob))
        stream.next("stream-open")

        def remove_and_fail():
            with transaction.atomic():
                team.memberships.get(user=bob).delete()
                raise RuntimeError("the removal fails after the delete")

        with pytest.raises(RuntimeError):
            remove_and_fail()

        run = run_event(integration, team)
        assert stream.next()["run"] == run.pk
        assert "stream-error" not in stream.seen  # the kick was never sent
        stream.close()


def test_a_deactivated_user_loses_their_streams(alice, bob, team, integration, broker):
    """Costs a few seconds: a web server of its own."""
    with web_server(stack_environment()) as web:
        deactivated = EventStream(f"{web.url}/t/acme/events/", cookies=session_cookies(bob))
        stays = EventStream(f"{web.url}/t/acme/events/", cookies=session_cookies(alice))
        for stream in (deactivated, stays):
            stream.next("stream-open")

        bob.is_active = False
        bob.save()

        assert deactivated.next("stream-error") == {"condition": "forbidden", "text": eventstream.STREAM_DENIED}
        run = run_event(integration, team)
        assert stays.next()["run"] == run.pk
        with pytest.raises(AssertionError, match="closed"):
            deactivated.next()
        stays.close()


def test_an_inactive_user_may_read_no_channel(bob, team):
    from integrations.live.channels import TeamChannelManager

    assert TeamChannelManager().can_read_channel(bob, team_channel(team.pk))
    type(bob).objects.filter(pk=bob.pk).update(is_active=False)

    # The same user object a stream holds from its start: the check reads the database again.
    assert not TeamChannelManager().can_read_channel(bob, team_channel(team.pk))
