"""Notifications delivered: the end of each run (and a connection that broke) POSTed to the team's
endpoint, signed as the Standard Webhooks specification says, retried with backoff, every attempt
in the delivery log (docs/interfaces.md#notifications). Against the GitHub simulator and a real
HTTP receiver on 127.0.0.1; the actors run in this process as a worker would run them, on the real
Redis broker, and once in a real `rundramatiq` worker."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from integrations.member_sync import runs, tasks, webhooks
from integrations.member_sync.sync import SyncResult
from integrations.member_sync.tasks import sync_github_members
from integrations.models import GitHubIntegration, MemberSyncRun, NotificationDelivery
from integrations.notifications import deliveries, outbox
from tests.github_webhooks import installation_event
from tests.helpers import wait_for
from tests.notifications import Receiver, endpoint_for, queued_messages, work_off
from tests.stack import github_environment, stack_environment, worker

# On PostgreSQL too (.ci/run): attempts are claimed and recorded by conditional UPDATEs.
pytestmark = [pytest.mark.services, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Status = NotificationDelivery.Status


@pytest.fixture
def receiver(settings):
    settings.NOTIFICATIONS_ALLOW_PRIVATE_URLS = True  # the receiver is on this machine
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def endpoint(team, receiver):
    return endpoint_for(team, receiver.url)


def sync_now(integration):
    """A Sync Now, its run synced by the actor's function, as a worker would."""
    run, _ = tasks.request_member_sync(integration=integration, trigger=MemberSyncRun.Trigger.MANUAL)
    sync_github_members.fn(run.pk)
    run.refresh_from_db()
    return run


def run_url(run):
    return f"{settings.SITE_URL}/t/acme/github/members/runs/{run.pk}/"


def test_an_endpoint_receives_member_sync_completed_with_the_changes_of_a_sync(
    integration, github, broker, receiver, endpoint
):
    first = sync_now(integration)
    acme = github.org("acme")
    acme.remove_members(3)
    acme.add_members(2)
    acme.rename_members(1)
    acme.change_roles(1)
    acme.update_profiles(1)
    second = sync_now(integration)

    work_off(broker)

    imported, changed = receiver.of_type("member_sync.completed")
    assert imported.verified()["data"]["changes"] == {"added": 250}
    message = changed.verified()
    assert message["type"] == "member_sync.completed"
    assert message["data"] == {
        "team": "acme", "organization": "acme", "run": second.pk, "status": "complete", "error_kind": None,
        "changes": {"deactivated": 3, "added": 2, "login_changed": 1, "role_changed": 1, "profile_changed": 1},
        "url": run_url(second),
    }  # fmt: skip
    assert imported.json["data"]["run"] == first.pk
    delivery = NotificationDelivery.objects.get(run=second)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (Status.DELIVERED, 1, 200)
    assert changed.headers["webhook-id"] == delivery.message_id
    assert changed.headers["content-type"] == "application/json"
    assert changed.path == "/hooks/member-sync"


def test_a_run_that_holds_deactivations_sends_member_sync_held_instead(integration, github, broker, receiver, endpoint):
    sync_now(integration)
    github.org("acme").remove_members(60)  # 24 % of 250: over the guard's 20 %
    held = sync_now(integration)

    work_off(broker)

    assert held.members_held == 60
    [message] = [each.verified() for each in receiver.received if each.json["data"]["run"] == held.pk]
    assert message["type"] == "member_sync.held"
    assert message["data"]["changes"] == {"held": 60}
    assert message["data"]["status"] == "complete"


def test_a_revoked_token_sends_connection_broken_once_then_plain_failures(
    integration, github, github_token, broker, receiver, endpoint
):
    sync_now(integration)
    github.revoke_token(github_token)
    broken = sync_now(integration)
    failed_again = sync_now(integration)

    work_off(broker)

    [message] = [each.verified() for each in receiver.of_type("connection.broken")]
    assert message["data"] == {
        "team": "acme", "organization": "acme", "run": broken.pk, "status": "error", "error_kind": "credentials",
        "changes": {}, "url": run_url(broken),
    }  # fmt: skip
    [again] = [each.verified() for each in receiver.of_type("member_sync.failed")]
    assert again["data"]["run"] == failed_again.pk


def test_a_failing_endpoint_is_retried_and_the_log_shows_both_attempts(integration, alice, broker, receiver, endpoint):
    receiver.answer_with(500)
    run = sync_now(integration)

    work_off(broker, once=True)  # the first attempt: 500

    delivery = NotificationDelivery.objects.get(run=run)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (Status.PENDING, 1, 500)
    assert "Receiver says no 500" in delivery.answer
    [retry] = queued_messages(broker)
    assert list(retry.args) == [delivery.pk, 1]
    due_in = retry.options["eta"] / 1000 - delivery.last_attempt_at.timestamp()
    assert 4.5 <= due_in <= 5.5  # the schedule's first delay, 5 s ± 10 %
    deliveries.deliver_notification.fn(*retry.args)  # its time has come

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (Status.DELIVERED, 2, 200)
    assert [attempt["status_code"] for attempt in delivery.history] == [500, 200]
    first, second = receiver.wait_for(2)
    assert first.body == second.body  # the same message, signed again at its own time
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    first.verified(), second.verified()
    client = Client()
    client.force_login(alice)
    page = client.get("/t/acme/github/notifications/").content.decode()
    assert 'data-status="delivered" data-attempts="2"' in page
    assert "HTTP 500 · Receiver says no 500" in page
    assert "HTTP 200 · {&quot;ok&quot;: true}" in page


def test_a_delivery_that_never_gets_a_2xx_fails_after_about_a_day_of_retries(integration, broker, receiver, endpoint):
    receiver.answer_with(*[503] * len(deliveries.RETRY_DELAYS), 503)
    run = sync_now(integration)

    messages = work_off(broker)

    delivery = NotificationDelivery.objects.get(run=run)
    assert delivery.status == Status.FAILED
    assert delivery.attempts == len(deliveries.RETRY_DELAYS) + 1 == 8
    assert [attempt["status_code"] for attempt in delivery.history] == [503] * 8
    delays = [message.options.get("eta", 0) - message.message_timestamp for message in messages[1:]]
    assert sum(delays) / 1000 / 3600 == pytest.approx(23.6, abs=2.5)  # ± the jitter


def test_a_worker_delivers_a_sync_now_and_retries_after_a_500(integration, github, broker, receiver, endpoint):
    """With a real `rundramatiq` worker: the run synced, its notification delivered, retried after 5 s."""
    receiver.answer_with(500)
    env = stack_environment(**github_environment(github), NOTIFICATIONS_ALLOW_PRIVATE_URLS="1")

    with worker(env):
        run, _ = tasks.request_member_sync(integration=integration, trigger=MemberSyncRun.Trigger.MANUAL)
        first, second = receiver.wait_for(2, timeout=60)
        delivery = wait_for(
            lambda: NotificationDelivery.objects.filter(run=run, status=Status.DELIVERED).first(),
            timeout=10,
            message="the delivery recorded",
        )

    assert [attempt["status_code"] for attempt in delivery.history] == [500, 200]
    assert first.verified() == second.verified()
    assert second.json["data"]["changes"] == {"added": 250}


def test_a_webhook_run_that_changed_nobody_notifies_nobody(integration, broker, receiver, endpoint):
    def unchanged(run):
        return SyncResult(created=0, updated=0, deactivated=0, unchanged=1, total=1, api_calls=1)

    def added(run):
        return SyncResult(created=1, updated=0, deactivated=0, unchanged=0, total=1, api_calls=1)

    runs.run_webhook_change(integration=integration, apply=unchanged)
    changed = runs.run_webhook_change(integration=integration, apply=added)

    work_off(broker)

    assert [(each.json["type"], each.json["data"]["run"]) for each in receiver.received] == [
        ("member_sync.completed", changed.pk)
    ]


def test_an_uninstalled_app_sends_connection_broken(integration, broker, receiver, endpoint):
    GitHubIntegration.objects.filter(pk=integration.pk).update(connection="app", installation_id=42)

    webhooks.apply("installation", installation_event("deleted", 42))
    webhooks.apply("installation", installation_event("deleted", 42))  # delivered twice: announced once

    work_off(broker)
    [message] = [each.verified() for each in receiver.received]
    assert message["type"] == "connection.broken"
    assert message["data"] == {
        "team": "acme", "organization": "acme", "run": None, "status": None, "error_kind": "installation",
        "changes": {}, "url": f"{settings.SITE_URL}/t/acme/github/members/",
    }  # fmt: skip


def test_a_suspended_installation_sends_connection_broken(integration, broker, receiver, endpoint):
    GitHubIntegration.objects.filter(pk=integration.pk).update(connection="app", installation_id=42)

    webhooks.apply("installation", installation_event("suspend", 42))

    work_off(broker)
    [message] = [each.verified() for each in receiver.received]
    assert (message["type"], message["data"]["error_kind"]) == ("connection.broken", "suspended")


def test_no_answer_in_time_is_retried(integration, broker, receiver, endpoint, monkeypatch):
    monkeypatch.setattr(deliveries, "READ_TIMEOUT", 0.3)
    receiver.delay = 1
    delivery = outbox.new_delivery(endpoint, "member_sync.completed", {"team": "acme"})

    deliveries.deliver_notification.fn(delivery.pk, 0)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (Status.PENDING, 1, None)
    assert delivery.answer == "No answer within 0.3 seconds."
    assert delivery.next_attempt_at > timezone.now()


def test_a_redirect_is_not_followed(integration, broker, receiver, endpoint):
    receiver.redirect_to = "http://127.0.0.1:9/elsewhere"
    delivery = outbox.new_delivery(endpoint, "member_sync.completed", {"team": "acme"})

    deliveries.deliver_notification.fn(delivery.pk, 0)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == (Status.PENDING, 302)
    assert "Redirected to http://127.0.0.1:9/elsewhere, which is not followed" in delivery.answer
    assert len(receiver.received) == 1


def test_a_receiver_that_is_not_there_is_retried_and_the_log_says_why(integration, broker, receiver, endpoint):
    endpoint.url = "http://127.0.0.1:9/hooks/secret-path-token"  # the discard port: nothing listens
    endpoint.save()
    delivery = outbox.new_delivery(endpoint, "member_sync.completed", {"team": "acme"})

    deliveries.deliver_notification.fn(delivery.pk, 0)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.answer) == (Status.PENDING, "Could not connect: Connection refused")
    assert "secret-path-token" not in str(delivery.history)


def test_an_attempt_is_made_once_however_many_messages_ask_for_it(integration, broker, receiver, endpoint):
    delivery = outbox.new_delivery(endpoint, "member_sync.completed", {"team": "acme"})

    assert deliveries._claim(delivery.pk, 0) is not None
    assert deliveries._claim(delivery.pk, 0) is None  # another worker, meanwhile
    NotificationDelivery.objects.filter(pk=delivery.pk).update(claimed_until=None)
    deliveries.deliver_notification.fn(delivery.pk, 0)
    deliveries.deliver_notification.fn(delivery.pk, 0)  # a duplicate message, after it was made

    assert len(receiver.received) == 1
    assert NotificationDelivery.objects.get(pk=delivery.pk).attempts == 1


def test_a_delivery_whose_message_was_lost_is_sent_again_by_the_periodic_check(integration, broker, receiver, endpoint):
    delivery = outbox.new_delivery(endpoint, "member_sync.completed", {"team": "acme"})
    NotificationDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=11))

    assert deliveries.resend_lost() == 1
    assert deliveries.resend_lost() == 0  # another worker looking at once: sent once

    work_off(broker)
    assert NotificationDelivery.objects.get(pk=delivery.pk).status == Status.DELIVERED
    assert len(receiver.received) == 1


def test_deliveries_older_than_30_days_are_pruned(team, endpoint):
    old = outbox.new_delivery(endpoint, "test", {})
    recent = outbox.new_delivery(endpoint, "test", {})
    NotificationDelivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))

    assert deliveries.prune() == 1
    assert list(NotificationDelivery.objects.values_list("pk", flat=True)) == [recent.pk]


def test_a_team_without_an_endpoint_costs_a_run_one_read(integration, django_assert_num_queries):
    run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status="complete")

    with django_assert_num_queries(1):
        outbox.run_ended(run)

    assert NotificationDelivery.objects.count() == 0
