"""Webhook healing (docs/architecture.md#webhooks): GitHub never redelivers a failed delivery by
itself, so a pass asks it for the App's recent deliveries and has each failed one sent again, once;
and the schedule rechecks suspended installations, whose `unsuspend` may never have come.

The simulator is the GitHub App and sends its deliveries to a receiver of the test's
(tests/github_webhooks.py), which answers as it is told; the healing pass talks to the simulator's
deliveries API over HTTP."""

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from integrations.member_sync import healing, schedule
from integrations.models import GitHubIntegration, MemberSyncRun, WebhookHealing
from tests.helpers import wait_for

# On PostgreSQL too (.ci/run): one pass a period is claimed by a unique slot.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PERIOD = timedelta(minutes=10)


@pytest.fixture
def healing_app(github, simulator_app, webhook_receiver, settings):
    """The simulator is this server's GitHub App, delivering to a receiver; a healing pass a period."""
    settings.GITHUB_WEBHOOK_HEALING_SECONDS = int(PERIOD.total_seconds())
    github.receiver = webhook_receiver
    return github


def attempts_of(github, guid):
    return [attempt for attempt in github.webhooks.attempts() if attempt.delivery.guid == guid]


def installed(github):
    """The App installed on acme, its `installation.created` delivered and forgotten by the receiver."""
    installation = github.install_app("acme")
    wait_for(lambda: github.receiver.guids, timeout=15, message="installation.created delivered")
    github.receiver.deliveries.clear()
    return installation


def removal(github):
    """A member leaves acme: the guid of the delivery GitHub makes of it, once it was attempted."""
    _, (guid,) = github.remove_members("acme", 1)
    wait_for(lambda: attempts_of(github, guid), timeout=15, message="the delivery attempted")
    return guid


def test_a_lost_delivery_is_redelivered_once(healing_app):
    github = healing_app
    installed(github)
    github.webhooks.lose()
    lost = removal(github)
    assert github.receiver.guids == []

    first = healing.heal_webhooks()

    assert (first.error, first.redelivered_count) == ("", 1)
    wait_for(lambda: github.receiver.guids == [lost], timeout=15, message="the redelivery")
    assert first.redelivered[0]["guid"] == lost
    assert (first.redelivered[0]["event"], first.redelivered[0]["action"]) == ("organization", "member_removed")
    # The next period's pass finds it delivered.
    later = healing.heal_webhooks(now=timezone.now() + PERIOD)
    assert later.redelivered_count == 0
    assert github.receiver.guids == [lost]


def test_a_redelivery_that_failed_too_is_not_asked_for_again(healing_app):
    github = healing_app
    installed(github)
    github.receiver.status = 503
    failed = removal(github)

    assert healing.heal_webhooks().redelivered_count == 1
    wait_for(lambda: len(attempts_of(github, failed)) == 2, timeout=15, message="the redelivery attempted")
    assert healing.heal_webhooks(now=timezone.now() + PERIOD).redelivered_count == 0


def test_a_delivery_this_server_refused_as_malformed_is_left_alone(healing_app):
    github = healing_app
    installed(github)
    github.receiver.status = 400
    removal(github)

    assert healing.heal_webhooks().redelivered_count == 0


def test_delivered_deliveries_are_not_asked_for_again(healing_app):
    github = healing_app
    installed(github)
    removal(github)

    assert healing.heal_webhooks().redelivered_count == 0
    assert len(github.receiver.guids) == 1


def test_one_pass_a_period_however_many_workers_look(healing_app):
    github = healing_app
    installed(github)
    now = timezone.now()

    assert healing.heal_webhooks(now=now) is not None
    assert healing.heal_webhooks(now=now + timedelta(seconds=1)) is None
    assert WebhookHealing.objects.count() == 1
    deliveries_listed = [target for _, target in github.requests if target.startswith("/app/hook/deliveries")]
    assert len(deliveries_listed) == 1


def test_without_the_app_or_a_period_nothing_is_asked(healing_app, settings):
    settings.GITHUB_WEBHOOK_HEALING_SECONDS = 0
    assert healing.heal_webhooks() is None
    settings.GITHUB_WEBHOOK_HEALING_SECONDS, settings.GITHUB_APP_ID = 600, ""
    assert healing.heal_webhooks() is None
    assert not WebhookHealing.objects.exists()


def test_a_pass_github_refuses_says_why(healing_app, settings):
    # A key that is not the App's: GitHub refuses its JWT.
    settings.GITHUB_APP_PRIVATE_KEY = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )

    refused = healing.heal_webhooks()

    assert "GitHub rejected the GitHub App's credentials" in refused.error
    assert refused.finished_at is not None
    assert healing.latest_healing(None).error == refused.error


# What the members page says.

URL = "/t/acme/github/members/"


def test_the_members_page_says_when_lost_deliveries_were_checked_and_its_own_redelivered(
    client, bob, integration, healing_app
):
    installation = healing_app.install_app("acme")
    GitHubIntegration.objects.filter(pk=integration.pk).update(connection="app", installation_id=installation.id)
    WebhookHealing.objects.create(
        slot=1, finished_at=timezone.now() - timedelta(minutes=3), redelivered_count=2,
        redelivered=[
            {"guid": "a", "event": "organization", "action": "member_removed", "installation_id": installation.id},
            {"guid": "b", "event": "organization", "action": "member_added", "installation_id": installation.id + 1},
        ],
    )  # fmt: skip
    client.force_login(bob)

    page = client.get(URL).content.decode()

    assert "Lost deliveries last checked 3\xa0minutes ago: 1 redelivered (organization.member_removed)" in page


def test_the_members_page_says_when_none_were_lost(client, bob, integration, healing_app):
    GitHubIntegration.objects.filter(pk=integration.pk).update(connection="app", installation_id=1)
    WebhookHealing.objects.create(slot=1, finished_at=timezone.now())
    client.force_login(bob)

    assert "Lost deliveries last checked now: none lost" in client.get(URL).content.decode()


# A lost installation change is found by the schedule.


@pytest.fixture
def app_integration(integration, healing_app, settings):
    settings.MEMBER_SYNC_EVERY_SECONDS = 24 * 3600
    installation = healing_app.install_app("acme")
    GitHubIntegration.objects.filter(pk=integration.pk).update(
        connection="app", installation_id=installation.id, next_full_sync_at=timezone.now() - timedelta(minutes=1)
    )
    integration.refresh_from_db()
    integration.installation = installation
    return integration


def suspended_on_our_side(integration):
    GitHubIntegration.objects.filter(pk=integration.pk).update(installation_suspended_at=timezone.now())


def test_a_lost_unsuspend_is_found_and_the_integration_synced_at_the_next_schedule_pass(
    app_integration, healing_app, broker
):
    github = healing_app
    github.suspend_installation(app_integration.installation.id)
    suspended_on_our_side(app_integration)
    github.webhooks.lose()
    github.unsuspend_installation(app_integration.installation.id)

    assert schedule.queue_due_full_syncs() == 1

    app_integration.refresh_from_db()
    assert app_integration.installation_suspended_at is None
    assert MemberSyncRun.objects.get().trigger == MemberSyncRun.Trigger.SCHEDULE


def test_an_installation_still_suspended_is_asked_about_again_a_period_later(app_integration, healing_app, broker):
    healing_app.suspend_installation(app_integration.installation.id)
    suspended_on_our_side(app_integration)
    now = timezone.now()

    assert schedule.queue_due_full_syncs(now=now) == 0
    assert schedule.queue_due_full_syncs(now=now + timedelta(seconds=1)) == 0

    app_integration.refresh_from_db()
    assert app_integration.installation_suspended_at is not None
    assert app_integration.next_full_sync_at == now + timedelta(days=1)
    asked = [
        target
        for _, target in healing_app.requests
        if target == f"/app/installations/{app_integration.installation.id}"
    ]
    assert len(asked) == 1


def test_an_installation_the_recheck_finds_gone_disconnects_saying_so(app_integration, healing_app, broker):
    suspended_on_our_side(app_integration)
    healing_app.webhooks.lose()
    healing_app.uninstall_app(app_integration.installation.id)

    assert schedule.queue_due_full_syncs() == 0

    app_integration.refresh_from_db()
    assert app_integration.disconnected_at is not None
    assert "uninstalled" in app_integration.disconnected_reason
