"""The members page's line saying how the members are kept current: webhooks for a GitHub App
connection, the scheduled full re-sync, or why syncing stopped."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.html import strip_tags

from integrations.member_sync.schedule import first_full_sync_at
from integrations.models import GitHubIntegration

URL = "/t/acme/github/members/"


@pytest.fixture(autouse=True)
def daily(settings):
    settings.MEMBER_SYNC_EVERY_SECONDS = 24 * 3600


def line(client, user):
    """The page's text, as a server renders it, with its whitespace collapsed."""
    client.force_login(user)
    return " ".join(strip_tags(client.get(URL).content.decode()).split())


def update(integration, **fields):
    GitHubIntegration.objects.filter(pk=integration.pk).update(**fields)


def test_an_app_connection_says_its_last_webhook_and_the_next_full_re_sync(client, bob, integration):
    next_at = timezone.now() + timedelta(hours=3)
    update(
        integration,
        connection="app",
        installation_id=1,
        last_webhook_at=timezone.now() - timedelta(minutes=2),
        next_full_sync_at=next_at,
    )

    assert f"Webhooks: last delivery 2 minutes ago · Full re-sync every 24 h, next at {next_at:%H:%M} UTC" in line(
        client, bob
    )


def test_an_app_connection_without_deliveries_says_so(client, bob, integration):
    update(integration, connection="app", installation_id=1)

    assert "Webhooks: no delivery yet · Full re-sync every 24 h" in line(client, bob)


def test_an_oauth_connection_says_it_gets_no_webhooks(client, bob, integration):
    next_at = timezone.now() + timedelta(minutes=30)
    update(integration, next_full_sync_at=next_at)

    assert (
        f"Full re-sync every 24 h, next at {next_at:%H:%M} UTC · No webhooks: an OAuth connection receives none. "
        "Install the GitHub App to get changes at once." in line(client, bob)
    )


def test_an_integration_never_scheduled_shows_the_time_the_schedule_will_give_it(client, bob, integration):
    now = timezone.now()
    expected = first_full_sync_at(integration.pk, now, timedelta(days=1))

    assert f"next at {expected:%H:%M} UTC" in line(client, bob)


def test_a_due_or_distant_re_sync_says_when(client, bob, integration, settings):
    update(integration, next_full_sync_at=timezone.now() - timedelta(minutes=1))
    assert "Full re-sync every 24 h, next due now" in line(client, bob)

    settings.MEMBER_SYNC_EVERY_SECONDS = 7 * 24 * 3600
    next_at = timezone.now() + timedelta(days=3)
    update(integration, next_full_sync_at=next_at)
    assert f"Full re-sync every 168 h, next on {next_at:%b} {next_at.day} at {next_at:%H:%M} UTC" in line(client, bob)


def test_a_period_of_zero_says_the_scheduled_re_sync_is_off(client, bob, integration, settings):
    settings.MEMBER_SYNC_EVERY_SECONDS = 0

    assert "Scheduled re-sync is off · No webhooks" in line(client, bob)


def test_a_disconnected_integration_says_why_syncing_stopped(client, bob, integration):
    update(integration, disconnected_at=timezone.now(), disconnected_reason="The GitHub App was uninstalled.")

    text = line(client, bob)
    assert "Syncing stopped: The GitHub App was uninstalled. Connect GitHub again to resume." in text
    assert "Full re-sync every" not in text


def test_a_suspended_installation_says_syncing_stopped(client, bob, integration):
    update(integration, connection="app", installation_id=1, installation_suspended_at=timezone.now())

    text = line(client, bob)
    assert "Syncing stopped: the GitHub App's installation on acme is suspended." in text
    assert "Full re-sync every" not in text
