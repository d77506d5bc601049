"""member-sync events: their content, their way through Redis, and who may read a team's channel."""

import json
from datetime import timedelta

import redis
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from integrations.channels import TeamChannelManager
from integrations.events import member_sync_payload, publish_member_sync, team_channel
from integrations.models import MemberSyncRun
from tests.base import BaseTestCase

Status = MemberSyncRun.Status
TOKEN = "gho_secretsecretsecretsecret"


class PayloadTestCase(BaseTestCase):
    def run_with(self, **fields):
        self.integration.access_token = TOKEN
        self.integration.save()
        return MemberSyncRun.objects.create(integration=self.integration, trigger="manual", **fields)

    def test_it_has_the_fields_of_the_spec(self):
        run = self.run_with(status=Status.COMPLETE, fetched=3, total=3, members_created=3)
        payload = member_sync_payload(run)

        assert payload["run"] == run.pk
        assert (payload["status"], payload["trigger"], payload["fetched"], payload["total"]) == (
            "complete",
            "manual",
            3,
            3,
        )
        assert payload["result"] == {
            "created": 3, "updated": 0, "deactivated": 0, "unchanged": 0, "total": 3, "held": 0, "skipped": 0,
        }  # fmt: skip
        assert payload["error"] is None
        assert timezone.datetime.fromisoformat(payload["at"])

    def test_an_error_run_says_what_went_wrong(self):
        payload = member_sync_payload(self.run_with(status=Status.ERROR, error="Reconnect GitHub."))
        assert (payload["error"], payload["result"]) == ("Reconnect GitHub.", None)

    def test_a_waiting_run_says_until_when_and_why(self):
        until = timezone.now() + timedelta(minutes=10)
        run = self.run_with(status=Status.QUEUED, waiting_until=until, error="GitHub rate limit reached")
        payload = member_sync_payload(run)

        assert payload["waiting"] == {"until": until.isoformat(), "reason": "GitHub rate limit reached"}
        assert payload["error"] is None

    def test_it_never_carries_the_token(self):
        run = self.run_with(status=Status.ERROR, error="x")
        assert TOKEN not in json.dumps(member_sync_payload(run))
        assert self.integration.encrypted_access_token not in json.dumps(member_sync_payload(run))


class PublishTestCase(BaseTestCase):
    def test_it_goes_out_on_the_teams_channel_through_redis(self):
        pubsub = redis.Redis(**settings.EVENTSTREAM_REDIS).pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe("events_channel")
        run = MemberSyncRun.objects.create(integration=self.integration, trigger="manual")

        publish_member_sync(run, team_id=self.team.pk)

        message = None
        for _ in range(50):
            message = pubsub.get_message(timeout=0.1)
            if message:
                break
        pubsub.close()
        assert message is not None
        event = json.loads(message["data"])
        assert (event["channel"], event["event_type"]) == (team_channel(self.team.pk), "member-sync")
        assert json.loads(event["data"])["run"] == run.pk


class ChannelAccessTestCase(BaseTestCase):
    manager = TeamChannelManager()

    def test_members_read_their_teams_channel(self):
        assert self.manager.can_read_channel(self.alice, team_channel(self.team.pk))
        assert self.manager.can_read_channel(self.bob, team_channel(self.team.pk))

    def test_others_do_not(self):
        assert not self.manager.can_read_channel(self.charlie, team_channel(self.team.pk))
        assert not self.manager.can_read_channel(AnonymousUser(), team_channel(self.team.pk))
        assert not self.manager.can_read_channel(None, team_channel(self.team.pk))

    def test_a_channel_that_is_no_team_is_read_by_nobody(self):
        for channel in ("no-such-team", team_channel(""), "anything", f"{team_channel(self.team.pk)}x"):
            assert not self.manager.can_read_channel(self.alice, channel)

    def test_the_url_names_the_team_by_slug_and_the_channel_by_id(self):
        channels = self.manager.get_channels_for_request(None, {"team_slug": "acme"})
        assert channels == {team_channel(self.team.pk)}
        assert self.manager.get_channels_for_request(None, {"team_slug": "nope"}) == {"no-such-team"}


class RemovedMemberTestCase(BaseTestCase):
    def test_removing_a_member_closes_their_open_streams(self):
        from django_eventstream.views import Listener, get_listener_manager

        listener = Listener()
        listener.user_id = self.bob.pk
        listener.channels = {team_channel(self.team.pk)}
        listener.wake_threadsafe = lambda: None  # no event loop here; the flag is what is checked
        get_listener_manager().add_listener(listener)
        try:
            self.team.memberships.get(user=self.bob).delete()
        finally:
            get_listener_manager().remove_listener(listener)

        assert listener.error["condition"] == "forbidden"

    def test_a_member_who_stays_keeps_their_stream(self):
        from django_eventstream.views import Listener, get_listener_manager

        listener = Listener()
        listener.user_id = self.alice.pk
        listener.channels = {team_channel(self.team.pk)}
        get_listener_manager().add_listener(listener)
        try:
            self.other_team.memberships.create(user=self.alice, role="member").delete()
        finally:
            get_listener_manager().remove_listener(listener)

        assert not listener.error


class StreamRequestTestCase(BaseTestCase):
    def test_a_malformed_es_meta_is_a_bad_request(self):
        self.client.force_login(self.alice)
        assert self.client.get("/t/acme/events/", {"es-meta": "garbage"}).status_code == 400
