"""Mail to a team's admins when one of them must act: deactivations held, a connection that stopped
working, the third failed run in a row (exactly then, not at the fourth). Never for a completed run,
never to a plain member. Sent by an actor after the commit (docs/interfaces.md#notifications); the
actor runs in this process as a worker would, through Django's test mail box."""

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from integrations.member_sync import runs, webhooks
from integrations.member_sync.sync import SyncResult
from integrations.models import GitHubIntegration
from integrations.notifications.admin_mail import mail_team_admins
from integrations.words import ErrorKind
from teams.models import Membership
from tests.github_webhooks import installation_event
from tests.notifications import queued_messages, work_off

# On PostgreSQL too (.ci/run): the streak of failures is read with one query over the run history.
pytestmark = [pytest.mark.services, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def connected(team, alice, bob, charlie, other_team, broker):
    """Acme connected (no GitHub needed: the runs are ended by hand). Alice (admin) and Bob (plain
    member) have addresses; Dora, another admin, has none; Charlie administers another team."""
    for user in (alice, bob, charlie):
        user.email = f"{user.username}@example.com"
        user.save()
    dora = get_user_model().objects.create(username="dora")
    Membership.objects.create(team=team, user=dora, role=Membership.Role.ADMIN)
    return GitHubIntegration.objects.create(team=team, organization_login="acme")


def ended_run(integration, *, kind=None, held=0):
    """A run of the integration, claimed and ended: in error of `kind`, or complete."""
    run, _ = runs.create_run(integration, trigger="manual")
    run = runs.start_run(run.pk)
    if kind is not None:
        runs.fail_run(run, error="GitHub said no.", kind=kind)
    else:
        result = SyncResult(created=0, updated=0, deactivated=0, unchanged=90, total=90, api_calls=1, held=held)
        runs.complete_run(run, result)
    return run


def mail_sent(broker, mailoutbox):
    """The mail the queued messages send, once a worker has run them."""
    before = len(mailoutbox)
    work_off(broker)
    return mailoutbox[before:]


def test_held_deactivations_mail_the_admins_with_an_address(connected, broker, mailoutbox):
    run = ended_run(connected, held=12)

    [mail] = mail_sent(broker, mailoutbox)

    assert mail.to == ["alice@example.com"]
    assert mail.subject == "Acme: 12 deactivations wait for your decision"
    assert "http://127.0.0.1:8000/t/acme/github/members/" in mail.body
    assert f"/t/acme/github/members/runs/{run.pk}/" in mail.body


def test_the_third_failed_run_in_a_row_mails_the_admins_and_the_fourth_does_not(connected, broker, mailoutbox):
    ended_run(connected, kind=ErrorKind.GITHUB)
    ended_run(connected, kind=ErrorKind.GITHUB)
    assert mail_sent(broker, mailoutbox) == []

    ended_run(connected, kind=ErrorKind.INTERRUPTED)
    [mail] = mail_sent(broker, mailoutbox)
    assert mail.subject == "Acme: the last 3 syncs of acme failed"
    assert "GitHub said no." in mail.body
    assert "Sync again" in mail.body  # what to do about the latest

    ended_run(connected, kind=ErrorKind.GITHUB)
    ended_run(connected, kind=ErrorKind.GITHUB)
    assert mail_sent(broker, mailoutbox) == []


def test_a_streak_broken_by_a_completed_run_counts_again_from_one(connected, broker, mailoutbox):
    ended_run(connected, kind=ErrorKind.GITHUB)
    ended_run(connected, kind=ErrorKind.GITHUB)
    ended_run(connected)
    ended_run(connected, kind=ErrorKind.GITHUB)
    ended_run(connected, kind=ErrorKind.GITHUB)
    assert mail_sent(broker, mailoutbox) == []

    ended_run(connected, kind=ErrorKind.GITHUB)
    assert len(mail_sent(broker, mailoutbox)) == 1


def test_a_broken_connection_mails_the_admins_once(connected, broker, mailoutbox):
    ended_run(connected, kind=ErrorKind.CREDENTIALS)
    [mail] = mail_sent(broker, mailoutbox)

    assert mail.subject == "Acme: the connection to GitHub stopped working"
    assert "Connect GitHub again" in mail.body
    ended_run(connected, kind=ErrorKind.CREDENTIALS)  # still broken: nothing new to say
    assert mail_sent(broker, mailoutbox) == []


def test_an_uninstalled_app_mails_the_admins(connected, broker, mailoutbox):
    GitHubIntegration.objects.filter(pk=connected.pk).update(connection="app", installation_id=42)

    webhooks.apply("installation", installation_event("deleted", 42))

    [mail] = mail_sent(broker, mailoutbox)
    assert mail.subject == "Acme: the connection to GitHub stopped working"
    assert "The GitHub App was uninstalled from acme" in mail.body
    assert "Install the GitHub App on the organization again." in mail.body


def test_a_completed_run_mails_nobody(connected, broker, mailoutbox):
    ended_run(connected)

    assert queued_messages(broker) == []
    assert mailoutbox == []


def test_no_mail_is_queued_when_no_admin_has_an_address(connected, alice, broker, mailoutbox):
    alice.email = ""
    alice.save()

    ended_run(connected, held=12)

    assert queued_messages(broker) == []


def test_the_run_ends_before_any_mail_is_sent(connected, broker, mailoutbox):
    run = ended_run(connected, held=12)

    assert run.finished_at <= timezone.now()
    assert mailoutbox == []  # queued for the worker: the run did not wait on a mail server
    [message] = queued_messages(broker)
    assert message.actor_name == mail_team_admins.actor_name


def test_an_admin_made_inactive_is_not_mailed(connected, alice, broker, mailoutbox):
    alice.is_active = False
    alice.save()

    ended_run(connected, held=12)

    assert mail_sent(broker, mailoutbox) == []
