"""The product's GitHub App client against the simulator's App: what an installation that may not read
the members, or is suspended, tells the product; an installation token GitHub refused is minted again
once before it is an error; the App's webhook deliveries listed and redelivered, an installation read."""

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from github_simulator.app import GitHubApp
from integrations.github import app
from integrations.github.client import GitHubClient
from integrations.github.errors import (
    AppCredentialsRejected,
    AppPermissionMissing,
    GitHubError,
    InstallationNotFound,
    InstallationSuspended,
)
from integrations.member_sync.sync import github_client
from integrations.models import GitHubIntegration, GitHubMember
from tests.helpers import wait_for
from tests.syncing import sync


def installation_client(github, installation_id):
    """The client a sync of an App connection reads with (integrations.member_sync.sync.github_client)."""
    return GitHubClient(
        partial(app.installation_token, installation_id),
        installation=True,
        api_url=github.url,
        graphql_url=f"{github.url}/graphql",
        backoff_factor=0,
    )


def test_an_installation_that_may_not_read_members_is_told_to_have_an_owner_accept_the_permission(
    github, simulator_app
):
    installation = github.install_app("acme")
    github.request_permissions(installation.id)
    member = github.org("acme").members[4].login

    with installation_client(github, installation.id) as client:
        with pytest.raises(AppPermissionMissing) as over_graphql:
            list(client.iter_member_pages("acme"))
        with pytest.raises(AppPermissionMissing):
            client.organization_membership("acme", member)
        with pytest.raises(AppPermissionMissing):
            list(client.iter_member_pages_rest("acme"))

    assert over_graphql.value.kind == "permissions"
    assert "accepts them in the organization's settings" in str(over_graphql.value)


def minted_since(github, before):
    return [target for method, target in github.requests[before:] if method == "POST" and "/access_tokens" in target]


@pytest.fixture
def app_integration(github, simulator_app, integration):
    """Acme's integration connected through the App installed on the simulator's acme."""
    installation = github.install_app("acme")
    integration.connection, integration.installation_id = GitHubIntegration.Connection.APP, installation.id
    integration.access_token = ""
    integration.save()
    return integration


def test_a_revoked_installation_token_is_minted_again_once_and_the_sync_completes(
    github, simulator_app, app_integration
):
    client = github_client(app_integration)
    github.revoke_installation_tokens(app_integration.installation_id)
    before = len(github.requests)

    result = sync(app_integration, client=client)

    assert result.created == 250
    assert len(minted_since(github, before)) == 1
    assert GitHubMember.objects.filter(integration=app_integration, is_active=True).count() == 250


def test_an_installation_token_refused_again_once_renewed_says_to_install_the_app_again(
    github, simulator_app, app_integration
):
    client = github_client(app_integration)
    github.inject("bad_credentials", times=2, path="/graphql")
    before = len(github.requests)

    with pytest.raises(InstallationNotFound) as refused:
        sync(app_integration, client=client)

    assert len(minted_since(github, before)) == 1
    assert "Install the GitHub App again" in str(refused.value)
    assert "Reconnect GitHub" not in str(refused.value)


def test_an_installation_suspended_during_a_run_is_told_as_suspended(github, simulator_app, app_integration):
    client = github_client(app_integration)
    github.suspend_installation(app_integration.installation_id)

    with pytest.raises(InstallationSuspended) as refused:
        sync(app_integration, client=client)

    assert refused.value.kind == "suspended"


def recorded(github, count):
    wait_for(lambda: len(github.webhooks.attempts()) >= count, timeout=15, message=f"{count} attempts")


def listed_pages(github, before):
    return [target for method, target in github.requests[before:] if target.startswith("/app/hook/deliveries")]


def test_hook_deliveries_are_every_attempt_since_a_time_newest_first_page_after_page(
    github, simulator_app, webhook_receiver, monkeypatch
):
    monkeypatch.setattr(app, "HOOK_DELIVERIES_PAGE_SIZE", 2)
    github.install_app("acme")
    github.webhooks.lose(1)
    github.add_members("acme", 4)
    recorded(github, 5)
    before = len(github.requests)

    deliveries = list(app.hook_deliveries(since=datetime.now(UTC) - timedelta(hours=1)))
    pages = listed_pages(github, before)
    none = list(app.hook_deliveries(since=datetime.now(UTC) + timedelta(hours=1)))

    assert [delivery.id for delivery in deliveries] == [attempt.id for attempt in github.webhooks.attempts()]
    assert len(pages) == 3
    assert [(delivery.event, delivery.action) for delivery in deliveries][-1] == ("installation", "created")
    lost = [delivery for delivery in deliveries if not delivery.succeeded]
    assert [(delivery.status_code, delivery.status) for delivery in lost] == [(0, "failed to connect to host")]
    assert lost[0].installation_id == github.installations.for_org(github.org("acme").id).id
    # Newest first: once an item is older than `since`, older pages are not asked for.
    assert none == []
    assert len(listed_pages(github, before)) == 4


def test_a_failed_delivery_is_redelivered_under_its_guid(github, simulator_app, webhook_receiver):
    github.install_app("acme")
    github.webhooks.lose(1)
    guid = github.add_members("acme", 1)[1][0]
    recorded(github, 2)
    (failed,) = [d for d in app.hook_deliveries(since=datetime.now(UTC) - timedelta(hours=1)) if not d.succeeded]

    app.redeliver(failed.id)

    webhook_receiver.wait_for(2)
    assert webhook_receiver.deliveries[1][0]["X-GitHub-Delivery"] == guid
    with pytest.raises(GitHubError):
        app.redeliver(1)


def test_an_installation_is_read_with_its_suspension_and_none_once_uninstalled(github, simulator_app, settings):
    installation = github.install_app("acme")

    found = app.installation(installation.id)
    github.suspend_installation(installation.id)
    suspended = app.installation(installation.id)
    github.uninstall_app(installation.id)
    gone = app.installation(installation.id)

    assert (found.id, found.account.login, found.suspended_at) == (installation.id, "acme", None)
    assert suspended.suspended_at is not None
    assert gone is None
    settings.GITHUB_APP_PRIVATE_KEY = GitHubApp().private_key_pem
    with pytest.raises(AppCredentialsRejected):
        app.installation(installation.id)
