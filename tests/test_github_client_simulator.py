"""The GitHub client over real HTTP, against the GitHub simulator (the ``github`` fixture of
tests/conftest.py): reading members, paging, the REST fallback, the OAuth flow, and one test per
injected fault showing the exception and the message a user reads."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from github_simulator import Simulator
from integrations.github.client import GitHubClient
from integrations.github.errors import (
    AccessRestricted,
    BadCredentials,
    GitHubError,
    GitHubUnavailable,
    MalformedResponse,
    OAuthError,
    OrganizationNotFound,
    RateLimited,
    ScopeMissing,
    SSORequired,
)
from integrations.github.oauth import authorize_url, exchange_code

CALLBACK = "https://app.example/integrations/github/callback/"


@pytest.fixture
def connect(github):
    def connect(token, **options):
        options = {"backoff_factor": 0, **options}
        return GitHubClient(
            token, api_url=github.url, graphql_url=f"{github.url}/graphql", web_url=github.url, **options
        )

    return connect


@pytest.fixture
def client(connect, github_token):
    return connect(github_token)


def run(callable_, *args, **kwargs):
    result = callable_(*args, **kwargs)
    return list(result) if hasattr(result, "__next__") else result


def failure(callable_, *args, **kwargs) -> GitHubError:
    with pytest.raises(GitHubError) as info:
        run(callable_, *args, **kwargs)
    return info.value


def members(pages):
    return [member for page in pages for member in page.members]


def paths(github):
    return [target.split("?")[0] for _, target in github.requests]


# Reading


def test_it_reads_every_member_page_by_page(github, client):
    pages = list(client.iter_member_pages("acme"))

    simulated = {member.database_id: member for member in github.org("acme").members}
    assert len(pages) == 3
    assert [page.has_next_page for page in pages] == [True, True, False]
    assert {page.total for page in pages} == {250}
    assert {member.github_id for member in members(pages)} == set(simulated)
    assert all(member.role == simulated[member.github_id].role.lower() for member in members(pages))
    assert {page.skipped for page in pages} == {0}
    assert github.requests == [("POST", "/graphql")] * 3
    assert client.api_calls == github.request_count == 3


def test_a_member_record_is_the_simulated_member(github, client):
    octocat = github.org("acme").members[0]

    first = list(client.iter_member_pages("acme"))[0].members[0]

    assert (first.github_id, first.node_id, first.login, first.name, first.email, first.avatar_url, first.role) == (
        octocat.database_id,
        octocat.node_id,
        octocat.login,
        octocat.name,
        octocat.email,
        octocat.avatar_url,
        "admin",
    )


def test_a_smaller_page_size_means_more_pages(github, client):
    pages = list(client.iter_member_pages("acme", page_size=50))

    assert len(pages) == 5
    assert len(members(pages)) == 250


def test_rate_limit_remaining_follows_githubs_headers(client):
    list(client.iter_member_pages("acme"))

    assert client.rate_limit_remaining == 5000 - 3


def test_viewer_and_organization(github, client):
    viewer = client.viewer()
    organization = client.organization("acme")

    assert (viewer.login, viewer.id) == ("octocat", 1)
    assert (organization.id, organization.login, organization.name) == (github.org("acme").id, "acme", "Acme")


def test_viewer_organizations_follow_the_link_header(github, client):
    for number in range(120):
        github.add_org(f"org-{number}", 1)

    organizations = client.viewer_organizations()

    assert len(organizations) == 121
    assert {"acme", "org-0", "org-119"} <= {organization.login for organization in organizations}
    assert paths(github) == ["/user/orgs", "/user/orgs"]


def test_rest_member_pages_list_admins_then_members(github, client):
    pages = list(client.iter_member_pages_rest("acme"))

    simulated = {member.database_id: member.role.lower() for member in github.org("acme").members}
    roles = [member.role for member in members(pages)]
    assert {member.github_id: member.role for member in members(pages)} == simulated
    assert roles == sorted(roles)  # "admin" < "member"
    assert [page.has_next_page for page in pages][-1] is False
    assert all(page.has_next_page for page in pages[:-1])
    assert {page.total for page in pages} == {None}


def test_without_graphql_the_members_are_read_over_rest(github, github_token):
    client = GitHubClient(github_token, api_url=github.url, graphql_url=f"{github.url}/api/graphql", web_url=github.url)

    pages = list(client.iter_member_pages("acme"))

    assert len(members(pages)) == 250
    assert paths(github)[0] == "/api/graphql"
    assert all(path.endswith("/members") for path in paths(github)[1:])
    assert client.api_calls == github.request_count


def test_a_second_read_sees_members_who_left(github, client):
    left = {member.database_id for member in github.org("acme").remove_members(5)}

    read = {member.github_id for member in members(client.iter_member_pages("acme"))}

    assert len(read) == 245
    assert not read & left


def test_a_renamed_organization_is_not_found_under_its_old_login_but_keeps_its_id(github, client):
    organization_id = github.org("acme").id
    github.org("acme").rename("acme-inc")

    error = failure(client.iter_member_pages, "acme")

    assert isinstance(error, OrganizationNotFound)
    assert {(organization.id, organization.login) for organization in client.viewer_organizations()} == {
        (organization_id, "acme-inc")
    }


# Faults: the exception, and what the user reads


def test_a_passing_server_error_is_retried_and_every_attempt_counted(github, client):
    github.inject("server_error", times=2)

    pages = list(client.iter_member_pages("acme"))

    assert len(members(pages)) == 250
    assert client.api_calls == github.request_count == 5


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_lasting_server_error_raises_github_unavailable(github, client, status):
    github.inject("server_error", times=None, status=status)

    error = failure(client.iter_member_pages, "acme")

    assert isinstance(error, GitHubUnavailable)
    assert error.transient
    assert str(error) == f"GitHub is unavailable (HTTP {status}). The sync will be retried; nothing to do for now."
    assert client.api_calls == github.request_count == 4


def test_a_connection_reset_is_retried(github, client):
    github.inject("connection_reset", times=1)

    assert len(members(client.iter_member_pages("acme"))) == 250
    assert client.api_calls == github.request_count == 4


def test_lasting_connection_resets_raise_github_unavailable(github, client):
    github.inject("connection_reset", times=None)

    error = failure(client.iter_member_pages, "acme")

    assert isinstance(error, GitHubUnavailable)
    assert "the connection failed" in str(error)
    assert client.api_calls == 4


def test_an_answer_slower_than_the_timeout_raises_github_unavailable():
    # A simulator of its own: the requests given up on are still being answered after the test, and
    # would otherwise use up the faults and budget of the next test.
    with Simulator(orgs={"slow": 10}, latency_ms=400) as slow:
        client = GitHubClient(
            slow.issue_token(),
            api_url=slow.url,
            graphql_url=f"{slow.url}/graphql",
            timeout=0.1,
            retries=1,
            backoff_factor=0,
        )

        error = failure(client.iter_member_pages, "slow")

    assert isinstance(error, GitHubUnavailable)
    assert str(error) == "GitHub is unavailable (no answer in time). The sync will be retried; nothing to do for now."
    assert client.api_calls == 2


@pytest.mark.parametrize("graphql_type", ["RATE_LIMITED", "RATE_LIMIT"])
def test_an_exhausted_rate_limit_raises_rate_limited_until_the_reset(github, client, graphql_type):
    github.inject("rate_limit_exhausted", reset_in=600, graphql_type=graphql_type)
    expected = datetime.now(UTC) + timedelta(seconds=600)

    error = failure(client.iter_member_pages, "acme")

    assert isinstance(error, RateLimited)
    assert error.transient
    assert abs(error.reset_at - expected) < timedelta(seconds=5)
    assert str(error) == (
        f"GitHub rate limit reached; waiting until {error.reset_at:%H:%M} UTC, then the sync resumes by itself."
    )
    assert client.api_calls == 1


def test_an_exhausted_rest_rate_limit_raises_rate_limited(github, client):
    github.inject("rate_limit_exhausted", reset_in=120)

    error = failure(client.organization, "acme")

    assert isinstance(error, RateLimited)
    assert abs(error.reset_at - (datetime.now(UTC) + timedelta(seconds=120))) < timedelta(seconds=5)


def test_a_secondary_rate_limit_honours_retry_after(github, client):
    github.inject("secondary_rate_limit", retry_after=30)

    error = failure(client.iter_member_pages, "acme")

    assert isinstance(error, RateLimited)
    assert abs(error.reset_at - (datetime.now(UTC) + timedelta(seconds=30))) < timedelta(seconds=5)
    assert client.api_calls == 1


def test_bad_credentials_raise_bad_credentials(github, client):
    github.inject("bad_credentials")

    error = failure(client.iter_member_pages, "acme")

    assert isinstance(error, BadCredentials)
    assert not error.transient
    assert str(error) == (
        "GitHub no longer accepts the connection's access token: it was revoked or has expired. "
        "Reconnect GitHub to resume syncing."
    )


def test_a_revoked_token_raises_bad_credentials(github, client, github_token):
    github.revoke_token(github_token)

    assert isinstance(failure(client.viewer), BadCredentials)
    assert isinstance(failure(client.iter_member_pages, "acme"), BadCredentials)


@pytest.mark.parametrize("read", ["graphql", "rest"])
def test_sso_required_raises_sso_required_with_the_authorization_url(github, client, read):
    github.inject("sso_required")

    error = failure(client.iter_member_pages if read == "graphql" else client.organization, "acme")

    assert isinstance(error, SSORequired)
    assert error.url.startswith(f"{github.url}/orgs/acme/sso?authorization_request=")
    assert str(error) == (
        "The organization uses SAML single sign-on and the GitHub token is not authorized for it. "
        f"Authorize it for the organization at {error.url}, then sync again."
    )


@pytest.mark.parametrize("read", ["graphql", "rest"])
def test_oauth_app_access_restrictions_raise_access_restricted(github, client, read):
    github.inject("access_restricted")

    error = failure(client.iter_member_pages if read == "graphql" else client.organization, "acme")

    assert isinstance(error, AccessRestricted)
    assert str(error).startswith(
        "The organization acme has OAuth App access restrictions and has not approved this app."
    )
    assert "An organization owner must approve it (https://docs.github.com/" in str(error)


@pytest.mark.parametrize("read", ["graphql", "rest"])
def test_org_not_found_raises_organization_not_found(github, client, read):
    github.inject("org_not_found")

    error = failure(client.iter_member_pages if read == "graphql" else client.organization, "acme")

    assert isinstance(error, OrganizationNotFound)
    assert error.login == "acme"
    assert str(error).startswith("GitHub has no organization acme that the connected account can see")


def test_an_unknown_organization_is_not_found(client):
    assert isinstance(failure(client.iter_member_pages, "no-such-org"), OrganizationNotFound)
    assert isinstance(failure(client.iter_member_pages_rest, "no-such-org"), OrganizationNotFound)


def test_resource_limits_halve_the_page_size_until_github_accepts_it(github, client):
    github.inject("resource_limits", times=None, max_first=30)

    pages = list(client.iter_member_pages("acme"))

    assert len(members(pages)) == 250
    assert len(pages) == 10  # 25 a page, after 100 and 50 were refused
    assert client.api_calls == github.request_count == 12


def test_malformed_json_raises_malformed_response(github, client):
    github.inject("malformed_json")

    error = failure(client.iter_member_pages, "acme")

    assert isinstance(error, MalformedResponse)
    assert not error.transient
    assert str(error) == (
        "GitHub sent an answer this app could not use (the GraphQL answer: not valid JSON). Nothing was changed; "
        "try again later, and report it if it keeps happening."
    )


def test_null_fields_skip_unusable_members_and_keep_the_rest(github, client):
    github.inject("null_fields")

    pages = list(client.iter_member_pages("acme"))

    read = members(pages)
    assert pages[0].skipped > 0
    assert len(read) + sum(page.skipped for page in pages) == 250
    assert all(member.login and member.github_id > 0 for member in read)
    assert "" in {member.name for member in read}
    assert "<script>alert('member')</script>" in {member.name for member in read}


def test_null_fields_over_rest_are_skipped_and_counted_too(github, client):
    github.inject("null_fields")

    pages = list(client.iter_member_pages_rest("acme"))

    assert len(members(pages)) + sum(page.skipped for page in pages) == 250
    assert sum(page.skipped for page in pages) > 0


@pytest.mark.parametrize("read", ["graphql", "rest", "organizations"])
def test_a_token_without_read_org_raises_scope_missing(github, connect, read):
    client = connect(github.issue_token(scopes=("repo", "gist")))
    calls = {
        "graphql": lambda: client.iter_member_pages("acme"),
        "rest": lambda: client.iter_member_pages_rest("acme"),
        "organizations": client.viewer_organizations,
    }

    error = failure(calls[read])

    assert isinstance(error, ScopeMissing)
    assert error.scope == "read:org"
    assert str(error) == (
        "GitHub did not grant the read:org permission this app needs to read the organization's members. "
        "Reconnect GitHub and grant it."
    )


@pytest.mark.parametrize("scopes", [("admin:org",), ("write:org", "repo")])
def test_scopes_that_imply_read_org_are_enough(github, connect, scopes):
    client = connect(github.issue_token(scopes=scopes))

    assert len(members(client.iter_member_pages("acme"))) == 250


@pytest.mark.parametrize(
    "fault",
    [
        "server_error",
        "rate_limit_exhausted",
        "secondary_rate_limit",
        "bad_credentials",
        "sso_required",
        "access_restricted",
        "org_not_found",
        "malformed_json",
    ],
)
def test_no_error_message_contains_the_token(github, client, github_token, fault):
    github.inject(fault, times=None)

    error = failure(client.iter_member_pages, "acme")

    assert github_token not in str(error)
    assert github_token not in repr(error)


# The OAuth web flow


@pytest.fixture
def oauth_app(settings, github):
    settings.GITHUB_WEB_URL = github.url
    settings.GITHUB_CLIENT_ID = "Iv1.simulated"
    settings.GITHUB_CLIENT_SECRET = "simulated-secret"


def authorize(url: str, *, scope=None) -> dict:
    """What a user's Authorize click on GitHub's page sends back to the callback."""
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    assert requests.get(url, timeout=5).status_code == 200
    if scope is not None:
        query["scope"] = scope
    origin = url.split("/login/oauth/")[0]
    answer = requests.post(f"{origin}/login/oauth/authorize", data=query, timeout=5, allow_redirects=False)
    assert answer.status_code == 302
    return {name: values[0] for name, values in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


@pytest.mark.usefixtures("oauth_app")
def test_the_oauth_flow_gives_a_token_that_reads_the_members(github, connect):
    callback = authorize(authorize_url(state="the-state", redirect_uri=CALLBACK))

    token = exchange_code(callback["code"], redirect_uri=CALLBACK)

    assert callback["state"] == "the-state"
    assert (token.token_type, token.scopes) == ("bearer", ["read:org"])
    assert len(members(connect(token.access_token).iter_member_pages("acme"))) == 250


@pytest.mark.usefixtures("oauth_app")
def test_a_code_used_twice_raises_oauth_error():
    code = authorize(authorize_url(state="s", redirect_uri=CALLBACK))["code"]
    exchange_code(code, redirect_uri=CALLBACK)

    error = failure(exchange_code, code, redirect_uri=CALLBACK)

    assert isinstance(error, OAuthError)
    assert error.code == "bad_verification_code"
    assert str(error) == "The GitHub authorization code is invalid or has expired. Connect GitHub again."


@pytest.mark.usefixtures("oauth_app")
def test_a_wrong_client_id_raises_oauth_error_for_the_operator(settings):
    code = authorize(authorize_url(state="s", redirect_uri=CALLBACK))["code"]
    settings.GITHUB_CLIENT_ID = "another-app"

    error = failure(exchange_code, code, redirect_uri=CALLBACK)

    assert isinstance(error, OAuthError)
    assert error.code == "incorrect_client_credentials"
    assert "GITHUB_CLIENT_ID" in str(error)


@pytest.mark.usefixtures("oauth_app")
def test_a_grant_without_read_org_raises_scope_missing():
    code = authorize(authorize_url(state="s", redirect_uri=CALLBACK), scope="repo")["code"]

    error = failure(exchange_code, code, redirect_uri=CALLBACK)

    assert isinstance(error, ScopeMissing)
    assert error.scope == "read:org"
