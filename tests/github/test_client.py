"""The GitHub client over real HTTP against the simulator: reading members, paging, the REST
fallback, and GitHub's refusals as the exception and message a user reads."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from github_simulator import Simulator
from integrations.github.client import GitHubClient, Response
from integrations.github.errors import (
    AccessRestricted,
    BadCredentials,
    GitHubError,
    GitHubUnavailable,
    MalformedResponse,
    OrganizationNotFound,
    RateLimited,
    ScopeMissing,
    SSORequired,
    ViewerNotMember,
)
from tests.helpers import wait_for


@pytest.fixture
def connect(github):
    def connect(token, *, layout="github.com", **options):
        api, graphql = (github.url, f"{github.url}/graphql")
        if layout == "enterprise":
            api, graphql = (f"{github.url}/api/v3", f"{github.url}/api/graphql")
        if layout == "no graphql":
            graphql = f"{github.url}/no-graphql"
        if layout == "enterprise without graphql":  # an Enterprise Server too old for GraphQL
            api, graphql = (f"{github.url}/api/v3", f"{github.url}/api/no-graphql")
        return GitHubClient(token, api_url=api, graphql_url=graphql, web_url=github.url, backoff_factor=0, **options)

    return connect


@pytest.fixture
def octocat(connect, github_token):
    """A client of the token's account, octocat, an admin of every simulated organization."""
    return connect(github_token)


def failure(read, *args) -> GitHubError:
    def read_all():
        result = read(*args)
        return list(result) if hasattr(result, "__next__") else result

    with pytest.raises(GitHubError) as raised:
        read_all()
    return raised.value


def reading(octocat, github, read):
    """The call that reads acme over GraphQL (its members) or over REST (the organization)."""
    if read == "graphql":
        return octocat.iter_member_pages, "acme"
    return octocat.organization, github.org("acme").id


def members(pages):
    return [member for page in pages for member in page.members]


def paths(github):
    return [target.split("?")[0] for _, target in github.requests]


def test_it_reads_every_member_page_by_page(github, octocat):
    pages = list(octocat.iter_member_pages("acme"))

    simulated = {member.database_id: member for member in github.org("acme").members}
    assert [page.has_next_page for page in pages] == [True, True, False]
    assert {page.total for page in pages} == {250}
    assert {member.github_id for member in members(pages)} == set(simulated)
    assert all(member.role == simulated[member.github_id].role.lower() for member in members(pages))
    assert {page.skipped for page in pages} == {0}
    assert octocat.api_calls == github.request_count == 3


def test_the_next_page_is_asked_for_while_the_caller_works_on_this_one(github, octocat):
    pages = octocat.iter_member_pages("acme")

    next(pages)

    wait_for(lambda: github.request_count == 2, timeout=10, message="the second page asked for")


def test_a_caller_that_stops_early_stops_the_asking(github, octocat):
    pages = octocat.iter_member_pages("acme")
    next(pages)

    pages.close()

    assert github.request_count == 2  # the first page, and the second already asked for
    assert not any(thread.name.startswith("github-next-page") for thread in threading.enumerate())


def test_an_error_on_a_later_page_reaches_the_caller(github, octocat):
    pages = octocat.iter_member_pages("acme")
    next(pages)
    github.inject("bad_credentials", times=None)

    # Whether the page asked for ahead met the fault or the one after it, the caller hears of it.
    assert isinstance(failure(lambda: list(pages)), BadCredentials)


def test_it_reads_github_enterprise_servers_layout(github, connect, github_token):
    client = connect(github_token, layout="enterprise")

    assert len(members(client.iter_member_pages("acme"))) == 250
    assert client.organization(github.org("acme").id).login == "acme"


@pytest.mark.parametrize("layout", ["enterprise", "enterprise without graphql"])
def test_an_enterprise_server_without_rate_limiting_is_read_whole_and_its_rate_limit_left_unknown(
    github, connect, github_token, layout
):
    github.set_rate_limit(None)
    client = connect(github_token, layout=layout)

    pages = list(client.iter_member_pages("acme"))

    assert len(members(pages)) == 250
    assert {page.skipped for page in pages} == {0}
    assert (client.rate_limit_remaining, client.rate_limit_reset_at) == (None, None)


def test_verified_domain_emails_fill_the_empty_public_ones(github, octocat):
    read = members(octocat.iter_member_pages("acme"))

    assert any(member.email.endswith("@acme.example") for member in read)


def test_a_token_that_may_not_read_verified_emails_reads_the_rest_unchanged(github, octocat):
    github.inject("verified_emails_forbidden", times=None)

    pages = list(octocat.iter_member_pages("acme"))

    assert len(members(pages)) == 250
    assert {page.skipped for page in pages} == {0}
    assert not any(member.email.endswith("@acme.example") for member in members(pages))


def test_a_viewer_removed_from_the_organization_is_refused_before_anything_is_read(github, octocat):
    github.org("acme").remove_viewer()

    error = failure(octocat.iter_member_pages, "acme")

    assert isinstance(error, ViewerNotMember)
    assert "not a member of acme" in str(error)
    assert "Reconnect GitHub with an account that belongs to the organization" in str(error)


@pytest.mark.parametrize("layout", ["no graphql", "enterprise without graphql"])
def test_over_rest_a_removed_viewer_is_refused_before_any_member_is_listed(github, connect, github_token, layout):
    github.org("acme").remove_viewer()

    error = failure(connect(github_token, layout=layout).iter_member_pages, "acme")

    assert isinstance(error, ViewerNotMember)
    assert not [path for path in paths(github) if path.endswith("/members")]


def test_over_rest_a_renamed_organization_is_not_mistaken_for_a_lost_membership(github, connect, github_token):
    github.org("acme").rename("acme-inc")

    error = failure(connect(github_token, layout="no graphql").iter_member_pages, "acme")

    assert isinstance(error, OrganizationNotFound)


def test_over_rest_an_installation_is_not_asked_for_a_membership_its_bot_has_not(github, connect):
    installation = github.install_app("acme")
    token = github.tokens.issue_for_installation(installation, {"members": "read"}, 3600).value
    client = connect(token, layout="no graphql", installation=True)

    read = members(client.iter_member_pages("acme"))

    assert len(read) == 250
    assert "/user/memberships/orgs/acme" not in paths(github)


def test_a_users_current_login_is_found_by_id_and_a_deleted_account_is_none(github, octocat):
    member = github.org("acme").members[6]
    github.org("acme").rename_member(member.login, "now-called-this")

    assert octocat.user_login(member.database_id) == "now-called-this"
    assert octocat.user_login(999_999_999) is None


def test_without_graphql_the_members_are_read_over_rest_with_roles_and_no_names(github, connect, github_token):
    client = connect(github_token, layout="no graphql")

    read = members(client.iter_member_pages("acme"))

    simulated = {member.database_id: member.role.lower() for member in github.org("acme").members}
    assert {member.github_id: member.role for member in read} == simulated
    assert {(member.name, member.email) for member in read} == {(None, None)}
    assert paths(github)[0] == "/no-graphql"
    assert client.api_calls == github.request_count


def test_a_role_change_between_the_rest_reads_loses_nobody(github, connect, github_token):
    client = connect(github_token, layout="no graphql")
    pages = client.iter_member_pages("acme")
    first = next(pages)  # the admin list is read before the first page of everyone
    github.org("acme").change_roles(20)

    read = [*first.members, *members(pages)]

    assert len({member.github_id for member in read}) == 250


def test_members_github_gives_no_role_are_read_with_an_unknown_role_and_none_is_skipped(github, octocat):
    org = github.org("acme")
    nameless = {org.members[5].login, org.members[150].login}
    github.inject("null_roles", times=None, logins=sorted(nameless))

    pages = list(octocat.iter_member_pages("acme"))
    membership = octocat.organization_membership("acme", org.members[5].login)

    roles = {member.login: member.role for member in members(pages)}
    assert len(roles) == 250
    assert {page.skipped for page in pages} == {0}
    assert {login for login, role in roles.items() if role == "unknown"} == nameless
    assert membership.member.role == "unknown"


def test_resource_limits_halve_the_page_size_until_github_accepts_it(github, octocat):
    github.inject("resource_limits", times=None, max_first=30)

    pages = list(octocat.iter_member_pages("acme"))

    assert len(members(pages)) == 250
    assert len(pages) == 10  # 25 a page, after 100 and 50 were refused
    assert octocat.api_calls == github.request_count == 12


@pytest.mark.parametrize("status", [502, 504])
def test_githubs_query_timeout_halves_the_page_size_without_resending_the_same_page(github, octocat, status):
    github.inject("query_timeout", times=None, max_first=50, status=status)

    pages = list(octocat.iter_member_pages("acme"))

    assert len(members(pages)) == 250
    assert len(pages) == 5
    assert octocat.api_calls == github.request_count == 6


def test_a_passing_server_error_is_retried_and_every_attempt_counted(github, octocat):
    github.inject("server_error", times=2, status=500)

    assert len(members(octocat.iter_member_pages("acme"))) == 250
    assert octocat.api_calls == github.request_count == 5


@pytest.mark.parametrize("status", [500, 503])
def test_a_lasting_server_error_raises_github_unavailable(github, octocat, status):
    github.inject("server_error", times=None, status=status)

    error = failure(octocat.iter_member_pages, "acme")

    assert isinstance(error, GitHubUnavailable)
    assert str(error) == f"GitHub is unavailable (HTTP {status}). The sync will be retried; nothing to do for now."
    assert octocat.api_calls == github.request_count == 4


def test_lasting_connection_resets_raise_github_unavailable(github, octocat):
    github.inject("connection_reset", times=None)

    error = failure(octocat.iter_member_pages, "acme")

    assert isinstance(error, GitHubUnavailable)
    assert "the connection failed" in str(error)
    assert octocat.api_calls == 4


@pytest.mark.services  # a simulator of its own, over HTTP
def test_an_answer_slower_than_the_timeout_raises_github_unavailable():
    # A simulator of its own: the requests given up on are still being answered after the test.
    with Simulator(orgs={"slow": 10}, latency_ms=400) as slow:
        client = GitHubClient(
            slow.issue_token(), api_url=slow.url, graphql_url=f"{slow.url}/graphql", timeout=0.1, retries=1
        )

        error = failure(client.iter_member_pages, "slow")

    assert str(error) == "GitHub is unavailable (no answer in time). The sync will be retried; nothing to do for now."


@pytest.mark.parametrize("graphql_type", ["RATE_LIMITED", "RATE_LIMIT"])
def test_an_exhausted_rate_limit_waits_until_the_reset(github, octocat, graphql_type):
    github.inject("rate_limit_exhausted", reset_in=600, graphql_type=graphql_type)

    error = failure(octocat.iter_member_pages, "acme")

    assert isinstance(error, RateLimited)
    assert abs(error.reset_at - (datetime.now(UTC) + timedelta(seconds=600))) < timedelta(seconds=5)
    assert octocat.api_calls == 1


def soon(seconds):
    return datetime.now(UTC) + timedelta(seconds=seconds)


def read_on_after_the_first_page(octocat, github, fault, **options):
    """The member read, with the fault injected once a page told when the primary window resets: a
    secondary limit must not be mistaken for the end of that window."""
    pages = octocat.iter_member_pages("acme")
    next(pages)
    github.inject(fault, times=None, **options)
    return failure(lambda: list(pages))


@pytest.mark.parametrize("graphql_status", [200, 403])
@pytest.mark.parametrize(("retry_after", "wait", "secondary"), [(30, 30, False), (None, 60, True)])
def test_a_graphql_secondary_rate_limit_waits_as_long_as_github_asks_never_until_the_primary_reset(
    github, octocat, graphql_status, retry_after, wait, secondary
):
    error = read_on_after_the_first_page(
        octocat, github, "secondary_rate_limit", retry_after=retry_after, graphql_status=graphql_status
    )

    assert isinstance(error, RateLimited)
    assert abs(error.reset_at - soon(wait)) < timedelta(seconds=5)
    assert error.secondary is secondary
    assert octocat.rate_limit_remaining > 0


def test_a_graphql_rate_limit_with_no_requests_left_waits_for_the_reset_github_names(github, octocat):
    error = read_on_after_the_first_page(octocat, github, "rate_limit_exhausted", reset_in=600)

    assert abs(error.reset_at - soon(600)) < timedelta(seconds=5)
    assert not error.secondary


@pytest.mark.parametrize("status", [403, 429])
@pytest.mark.parametrize(("retry_after", "wait", "secondary"), [(30, 30, False), (None, 60, True)])
def test_a_secondary_rate_limit_waits_as_long_as_github_asks(github, octocat, status, retry_after, wait, secondary):
    github.inject("secondary_rate_limit", retry_after=retry_after, status=status)

    error = failure(octocat.organization, github.org("acme").id)

    assert isinstance(error, RateLimited)
    assert abs(error.reset_at - (datetime.now(UTC) + timedelta(seconds=wait))) < timedelta(seconds=5)
    assert error.secondary is secondary


def test_an_endpoint_github_says_was_spammed_is_retried_later(github, octocat):
    github.inject("spammed")

    error = failure(octocat.organization, github.org("acme").id)

    assert isinstance(error, GitHubUnavailable)
    assert error.transient


def test_a_revoked_token_raises_bad_credentials(github, octocat, github_token):
    github.revoke_token(github_token)

    assert isinstance(failure(octocat.viewer_organizations), BadCredentials)
    assert isinstance(failure(octocat.iter_member_pages, "acme"), BadCredentials)


@pytest.mark.parametrize("read", ["graphql", "rest"])
def test_sso_required_gives_the_authorization_url(github, octocat, read):
    github.inject("sso_required")

    error = failure(*reading(octocat, github, read))

    assert isinstance(error, SSORequired)
    assert error.url.startswith(f"{github.url}/orgs/acme/sso?authorization_request=")


@pytest.mark.parametrize("read", ["graphql", "rest"])
def test_oauth_app_access_restrictions_raise_access_restricted(github, octocat, read):
    github.inject("access_restricted")

    error = failure(*reading(octocat, github, read))

    assert isinstance(error, AccessRestricted)


@pytest.mark.parametrize("read", ["graphql", "rest"])
def test_an_organization_out_of_reach_is_not_found(github, octocat, read):
    github.inject("org_not_found")

    error = failure(*reading(octocat, github, read))

    assert isinstance(error, OrganizationNotFound)
    assert "that the connected account can see" in str(error)


def test_malformed_json_raises_malformed_response(github, octocat):
    github.inject("malformed_json")

    error = failure(octocat.iter_member_pages, "acme")

    assert isinstance(error, MalformedResponse)
    assert "(the GraphQL answer: not valid JSON)" in str(error)


def test_null_fields_skip_unusable_members_and_keep_the_rest(github, octocat):
    github.inject("null_fields")

    pages = list(octocat.iter_member_pages("acme"))

    assert pages[0].skipped > 0
    assert len(members(pages)) + sum(page.skipped for page in pages) == 250


@pytest.mark.parametrize("read", ["graphql", "organizations"])
def test_a_token_without_read_org_raises_scope_missing(github, connect, read):
    client = connect(github.issue_token(scopes=("repo", "gist")))

    reads = {"graphql": lambda: client.iter_member_pages("acme"), "organizations": client.viewer_organizations}

    error = failure(reads[read])

    assert isinstance(error, ScopeMissing)
    assert error.scope == "read:org"


def test_viewer_organizations_follow_the_link_header(github, octocat):
    for number in range(120):
        github.add_org(f"org-{number}", 1)

    organizations, hidden = octocat.viewer_organizations()

    assert len(organizations) == 121
    assert hidden == []
    assert paths(github) == ["/user/orgs", "/user/orgs"]


def test_organizations_hidden_by_single_sign_on_are_named(github, octocat):
    secret = github.add_org("secret-corp", 3)
    github.inject("sso_partial", orgs=["secret-corp"])

    organizations, hidden = octocat.viewer_organizations()

    assert "secret-corp" not in {organization.login for organization in organizations}
    assert hidden == [secret.id]
    assert octocat.organization(secret.id).login == "secret-corp"


def test_a_renamed_organization_is_found_again_by_its_id(github, octocat):
    organization_id = github.org("acme").id
    github.org("acme").rename("acme-inc")

    assert isinstance(failure(octocat.iter_member_pages, "acme"), OrganizationNotFound)
    assert [(org.id, org.login) for org in octocat.viewer_organizations().organizations] == [
        (organization_id, "acme-inc")
    ]


@pytest.mark.parametrize(
    "fault", ["server_error", "rate_limit_exhausted", "bad_credentials", "sso_required", "malformed_json"]
)
def test_no_error_message_contains_the_token(github, octocat, github_token, fault):
    github.inject(fault, times=None)

    error = failure(octocat.iter_member_pages, "acme")

    assert github_token not in str(error)
    assert github_token not in repr(error)
    assert github_token not in repr(octocat)


@pytest.mark.parametrize(
    "link",
    ['<https://evil.example/user/orgs?page=2>; rel="next"', '<http://api.github.com/user/orgs?page=2>; rel="next"'],
)
def test_a_page_link_away_from_the_api_is_refused_before_the_token_goes_there(link):
    client = GitHubClient("a-token", api_url="https://api.github.com")
    answer = Response(200, CaseInsensitiveDict({"Link": link}), b"[]")

    with pytest.raises(MalformedResponse):
        client._next_page(answer, set())


def test_a_netrc_entry_never_replaces_the_token(tmp_path, monkeypatch):
    (tmp_path / ".netrc").write_text("machine api.github.com login someone password other-secret\n")
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    client = GitHubClient("the-token", api_url="https://api.github.com")

    prepared = client.session.prepare_request(requests.Request("GET", "https://api.github.com/user"))

    assert prepared.headers["Authorization"] == "Bearer the-token"


def test_own_membership_says_whether_the_tokens_user_owns_the_organization(github, octocat):
    owner = octocat.own_membership("acme")
    github.org("acme").set_viewer_role("member")
    plain_member = octocat.own_membership("acme")
    github.org("acme").remove_viewer()
    outside = octocat.own_membership("acme")
    no_such_organization = octocat.own_membership("no-such-org")

    assert (owner.member.role, owner.member.login) == ("admin", "octocat")
    assert plain_member.member.role == "member"
    assert (outside, no_such_organization) == (None, None)
    assert [target for _, target in github.requests][:2] == ["/user/memberships/orgs/acme"] * 2
