"""Injected faults: each answers as GitHub does, for as many requests as asked, where asked."""

import time

import pytest
import requests

from tests.github.helpers import MEMBERS_QUERY, get, graphql


def test_server_error_answers_5xx_on_rest_and_graphql(github, github_token):
    github.inject("server_error", times=2, status=503)

    assert get(github, "/user", github_token).status_code == 503
    assert graphql(github, github_token, "{ viewer { login } }").status_code == 503
    assert get(github, "/user", github_token).status_code == 200


def test_connection_reset_closes_the_socket_without_an_answer(github, github_token):
    github.inject("connection_reset")

    with pytest.raises(requests.ConnectionError):
        get(github, "/user", github_token)


def test_rate_limit_exhausted_answers_403_on_rest_and_an_error_on_graphql(github, github_token):
    github.inject("rate_limit_exhausted", times=2, reset_in=120, graphql_type="RATE_LIMIT")

    rest = get(github, "/user", github_token)
    body = graphql(github, github_token, "{ viewer { login } }")

    assert (rest.status_code, rest.headers["X-RateLimit-Remaining"]) == (403, "0")
    assert abs(int(rest.headers["X-RateLimit-Reset"]) - (time.time() + 120)) < 5
    assert (body.status_code, body.json()["errors"][0]["type"]) == (200, "RATE_LIMIT")


def test_a_spent_budget_is_refused_until_it_resets(github, github_token):
    for _ in range(3):
        get(github, "/user", github_token)
    github.tokens.budget(github.tokens.get(github_token), "core").used = 5000

    refused = get(github, "/user", github_token)
    free = get(github, "/rate_limit", github_token)

    assert (refused.status_code, refused.headers["X-RateLimit-Remaining"]) == (403, "0")
    assert free.json()["rate"]["remaining"] == 0


def test_secondary_rate_limit_asks_to_retry_after(github, github_token):
    github.inject("secondary_rate_limit", retry_after=45)

    response = get(github, "/orgs/acme/members", github_token)

    assert (response.status_code, response.headers["Retry-After"]) == (403, "45")
    assert "secondary rate limit" in response.json()["message"]


@pytest.mark.parametrize("status", [403, 429])
def test_secondary_rate_limit_without_retry_after_sends_no_header(github, github_token, status):
    github.inject("secondary_rate_limit", retry_after=None, status=status)

    response = get(github, "/orgs/acme/members", github_token)

    assert response.status_code == status
    assert "Retry-After" not in response.headers
    assert "secondary rate limit" in response.json()["message"]
    assert int(response.headers["X-RateLimit-Remaining"]) > 0


def test_a_graphql_secondary_rate_limit_is_a_200_with_a_rate_limited_error_and_requests_left(github, github_token):
    github.inject("secondary_rate_limit", retry_after=None)

    response = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=5)

    assert response.status_code == 200
    assert "data" not in response.json()
    [error] = response.json()["errors"]
    assert error["type"] == "RATE_LIMITED"
    assert error["message"].startswith("You have exceeded a secondary rate limit.")
    assert int(response.headers["X-RateLimit-Remaining"]) > 0
    assert "Retry-After" not in response.headers


def test_a_graphql_secondary_rate_limit_may_be_a_403_as_githubs_docs_allow(github, github_token):
    github.inject("secondary_rate_limit", retry_after=20, graphql_status=403)

    response = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=5)

    assert (response.status_code, response.headers["Retry-After"]) == (403, "20")
    assert "secondary rate limit" in response.json()["message"]


def test_spammed_answers_422_validation_failed(github, github_token):
    github.inject("spammed")

    response = get(github, "/user/orgs", github_token)

    body = response.json()
    assert (response.status_code, body["message"], body["status"]) == (422, "Validation Failed", "422")
    assert body["errors"][0]["code"] == "custom"
    assert "endpoint has been spammed" in body["errors"][0]["message"]
    assert body["documentation_url"].startswith("https://docs.github.com/")


@pytest.mark.parametrize(
    ("status", "message"),
    [(502, "Something went wrong while executing your query"), (504, "We couldn't respond to your request in time")],
)
def test_query_timeout_fails_pages_above_max_first_only(github, github_token, status, message):
    github.inject("query_timeout", times=None, max_first=40, status=status)

    small = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=40)
    big = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=41)

    assert small.status_code == 200
    assert big.status_code == status
    if status == 502:
        assert big.json()["data"] is None
        assert big.json()["errors"][0]["message"].startswith(message)
        assert f"`{big.headers['X-GitHub-Request-Id']}`" in big.json()["errors"][0]["message"]
    else:
        assert big.json()["message"].startswith(message)


def test_sso_partial_leaves_organizations_out_and_names_them_by_id(github, github_token):
    github.add_org("globex", size=3)
    github.add_org("initech", size=3)
    github.inject("sso_partial", orgs=["globex", "initech"])

    response = get(github, "/user/orgs", github_token)

    ids = f"{github.org('globex').id},{github.org('initech').id}"
    assert [org["login"] for org in response.json()] == ["acme"]
    assert response.headers["X-GitHub-SSO"] == f"partial-results; organizations={ids}"


def test_verified_emails_forbidden_nulls_each_node_with_a_forbidden_error(github, github_token):
    github.inject("verified_emails_forbidden")

    body = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=5).json()

    edges = body["data"]["organization"]["membersWithRole"]["edges"]
    assert [edge["node"] for edge in edges] == [None] * 5
    assert [error["type"] for error in body["errors"]] == ["FORBIDDEN"] * 5
    assert body["errors"][0]["path"] == [
        "organization",
        "membersWithRole",
        "edges",
        0,
        "node",
        "organizationVerifiedDomainEmails",
    ]


def test_sso_required_names_the_authorization_url(github, github_token):
    github.inject("sso_required", times=2)

    rest = get(github, "/orgs/acme/members", github_token)
    body = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=5)

    assert rest.status_code == 403
    assert rest.headers["X-GitHub-SSO"].startswith(f"required; url={github.url}/orgs/acme/sso?authorization_request=")
    assert body.json()["errors"][0]["extensions"] == {"saml_failure": True}
    assert body.headers["X-GitHub-SSO"] == rest.headers["X-GitHub-SSO"]


def test_access_restricted_and_org_not_found_refuse_the_organization(github, github_token):
    github.inject("access_restricted")
    github.inject("org_not_found")

    restricted = get(github, "/orgs/acme", github_token)
    missing = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=5).json()

    assert restricted.status_code == 403
    assert "OAuth App access restrictions" in restricted.json()["message"]
    assert missing["errors"][0]["type"] == "NOT_FOUND"


def test_resource_limits_refuse_pages_above_max_first(github, github_token):
    github.inject("resource_limits", max_first=50)

    refused = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=51).json()
    accepted = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=51).json()

    assert refused["errors"][0]["type"] == "RESOURCE_LIMITS_EXCEEDED"
    assert "errors" not in accepted


def test_malformed_json_is_a_200_that_does_not_parse(github, github_token):
    github.inject("malformed_json")

    response = get(github, "/user", github_token)

    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_null_fields_send_members_with_holes_on_graphql_and_rest(github, github_token):
    github.inject("null_fields", times=2)

    edges = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=16).json()["data"]["organization"]
    users = get(github, "/orgs/acme/members", github_token).json()

    nodes = [edge["node"] for edge in edges["membersWithRole"]["edges"]]
    assert nodes[3]["login"] is None
    assert nodes[4]["databaseId"] is None
    assert "email" not in nodes[1]
    assert nodes[6]["name"] == "<script>alert('member')</script>"
    assert nodes[7]["login"]
    assert nodes[15]["login"]
    assert users[3]["login"] is None
    assert users[4]["id"] is None


def test_null_roles_answer_a_null_role_for_the_members_named_on_graphql_and_rest(github, github_token):
    org = github.org("acme")
    nameless, other = org.members[2], org.members[3]
    github.inject("null_roles", times=2, logins=[nameless.login])

    edges = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=5).json()["data"]["organization"]
    membership = get(github, f"/orgs/acme/memberships/{nameless.login}", github_token).json()

    roles = {edge["node"]["login"]: edge["role"] for edge in edges["membersWithRole"]["edges"]}
    assert (roles[nameless.login], roles[other.login]) == (None, other.role)
    assert membership["role"] is None
    again = get(github, f"/orgs/acme/memberships/{nameless.login}", github_token).json()
    assert again["role"] == nameless.role.lower()  # the fault used up


def test_a_fault_lasts_its_times_or_until_cleared_and_only_on_its_path(github, github_token):
    github.inject("server_error", times=None, path="/orgs/")

    assert get(github, "/orgs/acme", github_token).status_code == 502
    assert get(github, "/api/v3/orgs/acme", github_token).status_code == 502
    assert get(github, "/user", github_token).status_code == 200
    github.clear_faults()
    assert get(github, "/orgs/acme", github_token).status_code == 200


def test_faults_leave_the_oauth_pages_alone_unless_their_path_names_them(github):
    github.inject("server_error", times=None)

    page = requests.get(f"{github.url}/login/oauth/authorize?client_id=x&redirect_uri=http://app/cb", timeout=10)

    assert page.status_code == 200


def test_unknown_faults_and_options_are_refused(github):
    for name, options in [("nope", {}), ("spammed", {"status": 500})]:
        with pytest.raises(ValueError, match=name):
            github.inject(name, **options)


def test_latency_is_added_to_every_request(github, github_token):
    github.set_latency(150)

    started = time.monotonic()
    get(github, "/user", github_token)

    assert time.monotonic() - started >= 0.15
