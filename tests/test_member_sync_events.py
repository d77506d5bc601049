"""member-sync events: their content, their way through Redis, and who may read a team's channel."""

import json
import time
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from integrations.live.channels import TeamChannelManager, team_channel
from integrations.member_sync.run_events import member_sync_payload, publish_member_sync
from integrations.models import MemberSyncRun

Status = MemberSyncRun.Status
channels = TeamChannelManager()


def run_of(integration, **fields):
    return MemberSyncRun.objects.create(integration=integration, trigger="manual", **fields)


def test_the_payload_has_the_fields_of_the_spec(integration):
    run = run_of(integration, status=Status.COMPLETE, fetched=3, total=3, members_created=3)

    payload = member_sync_payload(run)

    assert payload["run"] == run.pk
    assert (payload["status"], payload["trigger"], payload["fetched"], payload["total"]) == ("complete", "manual", 3, 3)
    assert payload["result"] == {
        "created": 3, "updated": 0, "deactivated": 0, "unchanged": 0, "total": 3, "held": 0, "skipped": 0,
    }  # fmt: skip
    assert payload["error"] is None
    assert datetime.fromisoformat(payload["at"])
    # `shown`: what the page shows, for its script to put in place.
    assert (payload["shown"]["label"], payload["shown"]["headline"]) == ("Complete", "Imported 3 members from acme.")


def test_an_error_run_says_what_went_wrong(integration):
    payload = member_sync_payload(run_of(integration, status=Status.ERROR, error="Reconnect GitHub."))

    assert (payload["error"], payload["result"]) == ("Reconnect GitHub.", None)


def test_a_waiting_run_says_until_when_and_why(integration):
    until = timezone.now() + timedelta(minutes=10)
    run = run_of(integration, status=Status.QUEUED, waiting_until=until, error="GitHub rate limit reached")

    payload = member_sync_payload(run)

    assert payload["waiting"] == {"until": until.isoformat(), "reason": "GitHub rate limit reached"}
    assert payload["error"] is None


def test_the_payload_never_carries_the_token(integration, github_token):
    payload = json.dumps(member_sync_payload(run_of(integration, status=Status.ERROR, error="x")))

    assert github_token not in payload
    assert integration.encrypted_access_token not in payload


def test_an_event_goes_out_on_the_teams_channel_through_redis(integration, team, django_assert_num_queries):
    pubsub = redis.Redis(**settings.EVENTSTREAM_REDIS).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("events_channel")
    run = MemberSyncRun.objects.select_related("integration").get(pk=run_of(integration).pk)

    # The run finds its team in the integration it was loaded with: a progress event costs no query.
    with django_assert_num_queries(0):
        publish_member_sync(run)

    # The pub/sub channel is every deployment's on this Redis
    # (docs/architecture.md#library-pitfalls): look for this team's event.
    event = None
    deadline = time.monotonic() + 5
    while event is None and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message and json.loads(message["data"])["channel"] == team_channel(team.pk):
            event = json.loads(message["data"])
    pubsub.close()
    assert event is not None
    assert event["event_type"] == "member-sync"
    assert json.loads(event["data"])["run"] == run.pk


def test_a_run_whose_event_failed_is_published_again_as_it_is_now_once_redis_answers(integration, monkeypatch):
    from integrations.member_sync import run_events

    sent = []
    monkeypatch.setattr(run_events, "_unpublished", set())

    def redis_down(channel, event_type, data):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(run_events, "send_event", redis_down)
    run = MemberSyncRun.objects.select_related("integration").get(
        pk=run_of(integration, status=Status.SYNCING, fetched=300, total=3000).pk
    )
    publish_member_sync(run)
    MemberSyncRun.objects.filter(pk=run.pk).update(fetched=1000)
    assert run_events.republish_unpublished() == 0  # still down: kept for the next try

    monkeypatch.setattr(run_events, "send_event", lambda channel, event_type, data: sent.append(data))
    assert run_events.republish_unpublished() == 1
    assert [(data["run"], data["fetched"]) for data in sent] == [(run.pk, 1000)]  # the state now, not the lost one
    assert run_events.republish_unpublished() == 0  # once


def test_members_read_their_teams_channel(alice, bob, team):
    assert channels.can_read_channel(alice, team_channel(team.pk))
    assert channels.can_read_channel(bob, team_channel(team.pk))


def test_others_do_not_read_a_teams_channel(charlie, team, other_team):
    assert not channels.can_read_channel(charlie, team_channel(team.pk))
    assert not channels.can_read_channel(AnonymousUser(), team_channel(team.pk))
    assert not channels.can_read_channel(None, team_channel(team.pk))


def test_a_channel_that_is_no_team_is_read_by_nobody(alice, team):
    for channel in ("no-such-team", team_channel(""), "anything", f"{team_channel(team.pk)}x"):
        assert not channels.can_read_channel(alice, channel)
