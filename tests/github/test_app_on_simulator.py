"""The product's GitHub App client against the simulator's App: what an installation that may not read
the members, or is suspended, tells the product."""

from functools import partial

import pytest

from integrations.github import app
from integrations.github.client import GitHubClient
from integrations.github.errors import AppPermissionMissing


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
