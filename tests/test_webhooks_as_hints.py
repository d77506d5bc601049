"""With the App connected, every member is as GitHub says, whatever its deliveries did: late, twice,
about someone who stayed, or never (docs/architecture.md#webhooks). The simulator is the GitHub App
and delivers to a real web server; a real worker applies the deliveries and heals the lost ones."""

import json
import uuid

import pytest
import requests

from integrations.models import GitHubIntegration, GitHubMember, MemberSyncRun
from tests import github_webhooks
from tests.helpers import wait_for
from tests.stack import stack_environment, web_server, worker
from tests.test_webhooks import about, synced

pytestmark = pytest.mark.django_db(transaction=True)

WEBHOOK = MemberSyncRun.Trigger.WEBHOOK


@pytest.fixture
def env(github, broker, simulator_app):
    return stack_environment(
        DEBUG=1,
        **simulator_app,
        # A healing pass every second, looked for five times a second; no scheduled full sync, which
        # would hide what the deliveries did.
        GITHUB_WEBHOOK_HEALING_SECONDS=1,
        MEMBER_SYNC_SCHEDULE_CHECK_SECONDS=0.2,
        MEMBER_SYNC_EVERY_SECONDS=0,
    )


def webhook_runs_complete(count):
    wait_for(
        lambda: MemberSyncRun.objects.filter(trigger=WEBHOOK, status="complete").count() >= count,
        timeout=30,
        message=f"{count} webhook runs complete",
    )


def active(member) -> bool:
    return GitHubMember.objects.get(github_id=member.database_id).is_active


def test_every_member_is_as_github_says_whatever_the_deliveries_did(env, github, integration):
    """Costs 10-15 s: a web server, a worker, and deliveries late, replayed, untrue and lost, each
    waited for until applied or healed."""
    # One worker thread: deliveries are applied one after another, each as a run of its own to wait for
    # (two at once, the second would be applied inside the first's run).
    with web_server(env) as web, worker(env, threads=1):
        github.app.configure(webhook_url=f"{web.url}/github/webhook/", webhook_secret=github_webhooks.SECRET)
        installation = github.install_app("acme")
        GitHubIntegration.objects.filter(pk=integration.pk).update(connection="app", installation_id=installation.id)
        integration.refresh_from_db()
        synced(integration)

        # Late: the addition arrives after the removal of the same person.
        github.webhooks.hold()
        (newcomer,), (added,) = github.add_members("acme", 1)
        github.remove_members("acme", logins=[newcomer.login])
        github.webhooks.release(order="reversed")
        webhook_runs_complete(2)
        assert not active(newcomer)

        # Replayed: the addition's body again, under a new id.
        replay = github.webhooks.resend_as_new(added)
        wait_for(
            lambda: any(a.delivery.guid == replay and a.status_code for a in github.webhooks.attempts()), timeout=15
        )
        assert not active(newcomer)

        # Untrue: a removal of someone still in the organization.
        staying = github.org("acme").member(5)
        body = json.dumps(github_webhooks.member_event("member_removed", integration.organization_id, about(staying)))
        answer = requests.post(
            f"{web.url}/github/webhook/",
            data=body.encode(),
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "organization",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": github_webhooks.signed(body.encode()),
            },
            timeout=10,
        )
        assert answer.status_code == 202
        webhook_runs_complete(3)
        assert active(staying)

        # Lost: the removal never arrives; the worker's healing pass has it redelivered.
        github.webhooks.lose()
        (leaving,), _ = github.remove_members("acme", 1)
        wait_for(lambda: not active(leaving), timeout=30, message="the lost removal healed")

        # A lost unsuspend: syncing resumes all the same.
        github.suspend_installation(installation.id)
        wait_for(
            lambda: GitHubIntegration.objects.get(pk=integration.pk).installation_suspended_at is not None, timeout=15
        )
        github.webhooks.lose()
        github.unsuspend_installation(installation.id)
        wait_for(
            lambda: MemberSyncRun.objects.filter(trigger=WEBHOOK, status="complete", total__gt=1).exists(),
            timeout=30,
            message="a full sync once the installation is unsuspended",
        )
        assert GitHubIntegration.objects.get(pk=integration.pk).installation_suspended_at is None

    members = {member.database_id for member in github.org("acme").members}
    stored = set(
        GitHubMember.objects.filter(integration=integration, is_active=True).values_list("github_id", flat=True)
    )
    assert stored == members
