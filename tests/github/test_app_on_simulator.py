"""The product's GitHub App client against the simulator's App: what an installation that may not read
the members, or is suspended, tells the product; an installation token GitHub refused is minted again
once before it is an error."""

from functools import partial

import pytest

from integrations.github import app
from integrations.github.client import GitHubClient
from integrations.github.errors import AppPermissionMissing, InstallationNotFound, InstallationSuspended
from integrations.models import GitHubIntegration, GitHubMember
from integrations.sync import github_client
from tests.syncing import sync


@pytest.fixture
def simulated_app(github, settings):
    """This server's GitHub App is the simulator's: its id, key and client, every GitHub URL on it."""
    registration = github.app
    settings.GITHUB_API_URL = settings.GITHUB_WEB_URL = github.url
    settings.GITHUB_GRAPHQL_URL = f"{github.url}/graphql"
    settings.GITHUB_APP_ID = str(registration.id)
    settings.GITHUB_APP_SLUG = registration.slug
    settings.GITHUB_APP_PRIVATE_KEY = registration.private_key_pem
    settings.GITHUB_APP_CLIENT_ID = registration.client_id
    settings.GITHUB_APP_CLIENT_SECRET = registration.client_secret
    app.forget_installation_tokens()
    yield github
    app.forget_installation_tokens()


def installation_client(github, installation_id):
    """The client a sync of an App connection reads with (integrations.sync.github_client)."""
    return GitHubClient(
        partial(app.installation_token, installation_id),
        installation=True,
        api_url=github.url,
        graphql_url=f"{github.url}/graphql",
        backoff_factor=0,
    )


def test_an_installation_that_may_not_read_members_is_told_to_have_an_owner_accept_the_permission(simulated_app):
    github = simulated_app
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
def app_integration(simulated_app, integration):
    """Acme's integration connected through the App installed on the simulator's acme."""
    installation = simulated_app.install_app("acme")
    integration.connection, integration.installation_id = GitHubIntegration.Connection.APP, installation.id
    integration.access_token = ""
    integration.save()
    return integration


def test_a_revoked_installation_token_is_minted_again_once_and_the_sync_completes(simulated_app, app_integration):
    github = simulated_app
    client = github_client(app_integration)
    github.revoke_installation_tokens(app_integration.installation_id)
    before = len(github.requests)

    result = sync(app_integration, client=client)

    assert result.created == 250
    assert len(minted_since(github, before)) == 1
    assert GitHubMember.objects.filter(integration=app_integration, is_active=True).count() == 250


def test_an_installation_token_refused_again_once_renewed_says_to_install_the_app_again(simulated_app, app_integration):
    github = simulated_app
    client = github_client(app_integration)
    github.inject("bad_credentials", times=2, path="/graphql")
    before = len(github.requests)

    with pytest.raises(InstallationNotFound) as refused:
        sync(app_integration, client=client)

    assert len(minted_since(github, before)) == 1
    assert "Install the GitHub App again" in str(refused.value)
    assert "Reconnect GitHub" not in str(refused.value)


def test_an_installation_suspended_during_a_run_is_told_as_suspended(simulated_app, app_integration):
    github = simulated_app
    client = github_client(app_integration)
    github.suspend_installation(app_integration.installation_id)

    with pytest.raises(InstallationSuspended) as refused:
        sync(app_integration, client=client)

    assert refused.value.kind == "suspended"
