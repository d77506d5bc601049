"""The GitHub simulator (SPEC §7) over real HTTP: its answers must be GitHub's, as GitHub's published
descriptions (../shared/github/) and documentation give them."""

import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from graphql import build_schema, execute, is_enum_type, is_object_type, parse, validate
from jsonschema import Draft202012Validator, FormatChecker

from github_simulator import Simulator, api
from github_simulator import graphql as simulated_graphql
from github_simulator.responses import Request
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent

MEMBERS = """
query Members($login: String!, $first: Int!, $after: String) {
  organization(login: $login) {
    id
    databaseId
    login
    name
    membersWithRole(first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        cursor
        role
        node {
          id
          databaseId
          login
          name
          email
          avatarUrl
          url
        }
      }
    }
  }
  rateLimit {
    limit
    cost
    remaining
    resetAt
    used
    nodeCount
  }
  viewer {
    login
    databaseId
  }
}
"""


def get(github, path, token=None):
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(f"{github.url}{path}", headers=headers, timeout=10)


def graphql(github, token, document, **variables):
    return requests.post(
        f"{github.url}/graphql",
        json={"query": document, "variables": variables},
        headers={"Authorization": f"bearer {token}"},
        timeout=10,
    )


def members_page(github, token, login="acme", first=100, after=None):
    response = graphql(github, token, MEMBERS, login=login, first=first, after=after)
    assert response.status_code == 200, response.text
    return response.json()["data"]["organization"]["membersWithRole"]


def all_member_edges(github, token, login="acme", first=100):
    edges, after = [], None
    while True:
        connection = members_page(github, token, login, first, after)
        edges += connection["edges"]
        if not connection["pageInfo"]["hasNextPage"]:
            return edges
        after = connection["pageInfo"]["endCursor"]


def assert_conforms(schema, document, variables, data):
    """The document is valid for GitHub's schema, and the data answered to it is data GitHub's schema
    allows: executing the document against that schema, over the data itself, gives it back unchanged
    and without an error (wrong types, nulls in non-null fields and unknown enum values all fail)."""
    assert validate(schema, parse(document)) == []
    result = execute(
        schema,
        parse(document),
        root_value=data,
        variable_values=variables,
        field_resolver=lambda source, info, **_: source.get(info.path.key),
    )
    assert result.errors is None
    assert result.data == data


# REST


REST_BODIES = [
    ("/user", "/user", ("read:org",)),
    ("/user", "/user", ("read:org", "user")),
    ("/user/orgs", "/user/orgs", ("read:org",)),
    ("/orgs/{org}", "/orgs/acme", ("read:org",)),
    ("/orgs/{org}/members", "/orgs/acme/members?per_page=100", ("read:org",)),
    ("/orgs/{org}/members", "/orgs/acme/members?role=admin", ("read:org",)),
    ("/orgs/{org}/memberships/{username}", "/orgs/acme/memberships/octocat", ("read:org",)),
]


@pytest.mark.parametrize(("operation", "path", "scopes"), REST_BODIES, ids=[f"{p} {s}" for _, p, s in REST_BODIES])
def test_rest_bodies_validate_against_githubs_response_schemas(github, github_rest_schema, operation, path, scopes):
    response = get(github, path, github.issue_token(scopes=scopes))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    Draft202012Validator(github_rest_schema(operation), format_checker=FormatChecker()).validate(response.json())


def test_a_plain_members_membership_validates_and_names_its_role(github, github_token, github_rest_schema):
    member = github.org("acme").members[7]

    response = get(github, f"/orgs/acme/memberships/{member.login.upper()}", github_token)

    assert response.status_code == 200
    body = response.json()
    Draft202012Validator(github_rest_schema("/orgs/{org}/memberships/{username}")).validate(body)
    assert (body["user"]["id"], body["role"], body["state"]) == (member.database_id, member.role.lower(), "active")


def test_it_pages_rest_members_by_the_link_header(github, github_token):
    org = github.org("acme")
    logins, links = [], []
    url = f"{github.url}/orgs/acme/members?per_page=100"
    while url:
        response = requests.get(url, headers={"Authorization": f"token {github_token}"}, timeout=10)
        logins += [user["login"] for user in response.json()]
        links.append(response.links)
        url = response.links.get("next", {}).get("url")

    assert logins == [member.login for member in org.members]
    assert [sorted(page) for page in links] == [["last", "next"], ["first", "last", "next", "prev"], ["first", "prev"]]
    # GitHub's links name the organization by id, and keep the query.
    last = urlsplit(links[0]["last"]["url"])
    assert last.path == f"/organizations/{org.id}/members"
    assert parse_qs(last.query) == {"per_page": ["100"], "page": ["3"]}


def test_rest_members_filter_by_role_and_cap_per_page_at_100(github, github_token):
    admins = [member.login for member in github.org("acme").members if member.role == "ADMIN"]

    by_role = get(github, "/orgs/acme/members?role=admin&per_page=100", github_token).json()
    capped = get(github, "/orgs/acme/members?per_page=500", github_token).json()
    invalid = get(github, "/orgs/acme/members?role=owner", github_token)

    assert [user["login"] for user in by_role] == admins
    assert 10 < len(admins) < 50
    assert len(capped) == 100
    assert invalid.status_code == 422


def test_unknown_organizations_members_and_routes_are_not_found(github, github_token):
    for path in ("/orgs/nobody", "/orgs/acme/memberships/nobody", "/repos/acme/app", "/orgs/nobody/members"):
        response = get(github, path, github_token)
        assert response.status_code == 404, path
        assert response.json()["message"] == "Not Found"
        assert response.json()["status"] == "404"


def test_requests_without_a_token_require_authentication(github):
    rest = get(github, "/user")
    graph = requests.post(f"{github.url}/graphql", json={"query": "{ viewer { login } }"}, timeout=10)

    assert rest.status_code == 401
    assert rest.json() == {
        "message": "Requires authentication",
        "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user",
        "status": "401",
    }
    assert graph.status_code == 401
    assert graph.json()["message"] == "This endpoint requires you to be authenticated."


def test_unknown_and_revoked_tokens_get_bad_credentials(github, github_token):
    github.revoke_token(github_token)

    for token in (github_token, "gho_unknown"):
        rest = get(github, "/user", token)
        graph = graphql(github, token, "{ viewer { login } }")
        assert rest.status_code == graph.status_code == 401
        assert rest.json() == {
            "message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest",
            "status": "401",
        }
        assert graph.json()["message"] == "Bad credentials"


def test_listing_organizations_needs_read_org_or_user_scope(github):
    response = get(github, "/user/orgs", github.issue_token(scopes=()))

    assert response.status_code == 403
    assert response.json()["message"] == "You need at least read:org scope or user scope to list your organizations."


def test_api_answers_carry_githubs_rate_limit_and_scope_headers(github):
    token = github.issue_token(scopes=("read:org", "user"))

    first = get(github, "/user", token)
    second = get(github, "/orgs/acme", token)
    graph = graphql(github, token, "{ viewer { login } }")

    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("5000", "4999")
    assert (second.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Used"]) == ("4998", "2")
    assert first.headers["X-RateLimit-Resource"] == "core"
    assert int(first.headers["X-RateLimit-Reset"]) == pytest.approx(time.time() + 3600, abs=5)
    assert (graph.headers["X-RateLimit-Resource"], graph.headers["X-RateLimit-Remaining"]) == ("graphql", "4999")
    assert first.headers["X-OAuth-Scopes"] == "read:org, user"
    assert re.fullmatch(r"[0-9A-F]+(:[0-9A-F]+){4}", first.headers["X-GitHub-Request-Id"])


def test_an_exhausted_budget_is_answered_as_github_answers_it():
    with Simulator(orgs={"acme": 3}, rate_limit=2) as github:
        token = github.issue_token()
        statuses = [get(github, "/user", token).status_code for _ in range(3)]
        graph = [graphql(github, token, "{ viewer { login } }") for _ in range(3)]

    assert statuses == [200, 200, 403]
    assert [response.status_code for response in graph] == [200, 200, 200]
    assert graph[2].json() == {
        "errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}]
    }
    assert (graph[2].headers["X-RateLimit-Remaining"], graph[2].headers["X-RateLimit-Limit"]) == ("0", "2")


# GraphQL


@pytest.mark.parametrize("first", [100, 7])
def test_it_pages_members_by_cursor_every_member_exactly_once(github, github_token, github_graphql_schema, first):
    org = github.org("acme")
    ids, after, pages = [], None, 0
    while True:
        variables = {"login": "acme", "first": first, "after": after}
        data = graphql(github, github_token, MEMBERS, **variables).json()["data"]
        assert_conforms(github_graphql_schema, MEMBERS, variables, data)
        connection = data["organization"]["membersWithRole"]
        assert connection["totalCount"] == 250
        ids += [edge["node"]["databaseId"] for edge in connection["edges"]]
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    assert pages == -(-250 // first)
    assert ids == [member.database_id for member in org.members]
    assert len(set(ids)) == 250


def test_members_look_like_githubs(github, github_token):
    edges = all_member_edges(github, github_token)
    nodes = [edge["node"] for edge in edges]

    assert nodes[0]["login"] == "octocat"  # the viewer belongs to every organization
    assert all(re.fullmatch(r"U_kg[A-Za-z0-9_-]+", node["id"]) for node in nodes)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", node["login"]) for node in nodes)
    assert all(node["avatarUrl"].startswith("https://avatars.githubusercontent.com/u/") for node in nodes)
    assert 0 < sum(node["name"] is None for node in nodes) < 60
    assert 0 < sum(node["email"] == "" for node in nodes) < 250
    assert 10 < sum(edge["role"] == "ADMIN" for edge in edges) < 50
    assert edges[5]["cursor"].startswith("Y3Vyc29yOnYyOpHO")  # base64 of "cursor:v2:" and msgpack, as GitHub's


def test_aliases_fragments_and_variables_work_as_on_github(github, github_token, github_graphql_schema):
    document = """
    query Team($org: String!, $size: Int = 3) {
      team: organization(login: $org) {
        ...Org
      }
      me: viewer {
        handle: login
      }
    }
    fragment Org on Organization {
      handle: login
      admins: membersWithRole(first: $size) {
        edges {
          role
          node {
            ... on User {
              handle: login
            }
          }
        }
      }
    }
    """
    variables = {"org": "ACME"}

    data = graphql(github, github_token, document, **variables).json()["data"]

    assert_conforms(github_graphql_schema, document, variables, data)
    assert data["me"] == {"handle": "octocat"}
    assert data["team"]["handle"] == "acme"
    assert len(data["team"]["admins"]["edges"]) == 3


def test_invalid_documents_get_githubs_validation_errors(github, github_token):
    unknown_field = graphql(github, github_token, '{ organization(login: "acme") { nonsense } }')
    missing_argument = graphql(github, github_token, "{ organization { login } }")
    unparsable = graphql(github, github_token, '{ organization(login: "acme") {')

    for response in (unknown_field, missing_argument, unparsable):
        assert response.status_code == 200
        assert "data" not in response.json()
    assert unknown_field.json()["errors"] == [
        {
            "extensions": {"code": "undefinedField", "typeName": "Organization", "fieldName": "nonsense"},
            "locations": [{"line": 1, "column": 33}],
            "message": "Field 'nonsense' doesn't exist on type 'Organization'",
        }
    ]
    assert (
        missing_argument.json()["errors"][0]["message"] == "Field 'organization' is missing required arguments: login"
    )
    assert unparsable.json()["errors"][0]["locations"] == [{"line": 1, "column": 32}]


@pytest.mark.parametrize(
    ("arguments", "error_type", "message"),
    [
        ("first: 101", "EXCESSIVE_PAGINATION", "Requesting 101 records on the `membersWithRole` connection exceeds"),
        ("first: 0", "EXCESSIVE_PAGINATION", "Requesting 0 records on the `membersWithRole` connection exceeds"),
        ("", "MISSING_PAGINATION_BOUNDARIES", "You must provide a `first` or `last` value"),
    ],
)
def test_a_page_size_outside_1_to_100_is_refused(github, github_token, arguments, error_type, message):
    members = f"membersWithRole({arguments})" if arguments else "membersWithRole"
    document = f'{{ organization(login: "acme") {{ {members} {{ totalCount }} }} }}'

    payload = graphql(github, github_token, document).json()

    assert "data" not in payload
    assert payload["errors"][0]["type"] == error_type
    assert payload["errors"][0]["message"].startswith(message)
    assert payload["errors"][0]["path"] == ["organization", "membersWithRole"]


def test_members_need_the_read_org_scope(github):
    token = github.issue_token(scopes=("user",))

    payload = graphql(github, token, MEMBERS, login="acme", first=10).json()

    assert "data" not in payload
    assert payload["errors"][0]["type"] == "INSUFFICIENT_SCOPES"
    assert "requires one of the following scopes: ['read:org']" in payload["errors"][0]["message"]
    assert "only been granted the: ['user'] scopes" in payload["errors"][0]["message"]


def test_a_cursor_the_simulator_did_not_issue_is_refused(github, github_token):
    payload = graphql(github, github_token, MEMBERS, login="acme", first=10, after="bm90IGEgY3Vyc29y").json()

    assert payload["data"]["organization"] is None
    assert payload["errors"][0]["type"] == "INVALID_CURSOR_ARGUMENTS"
    assert payload["errors"][0]["path"] == ["organization", "membersWithRole"]


def test_it_pages_backwards_with_last_and_before(github, github_token):
    document = """
    query($before: String) {
      organization(login: "acme") {
        membersWithRole(last: 3, before: $before) {
          pageInfo { hasPreviousPage startCursor }
          nodes { databaseId }
        }
      }
    }
    """
    forward = members_page(github, github_token, first=10)

    connection = graphql(github, github_token, document, before=forward["pageInfo"]["endCursor"]).json()["data"]
    backward = connection["organization"]["membersWithRole"]

    assert [node["databaseId"] for node in backward["nodes"]] == [
        edge["node"]["databaseId"] for edge in forward["edges"][6:9]
    ]
    assert backward["pageInfo"]["hasPreviousPage"] is True


def test_viewer_and_rate_limit_answer_like_githubs(github, github_token):
    response = graphql(github, github_token, "{ viewer { login databaseId } rateLimit { limit cost remaining used } }")

    data = response.json()["data"]
    assert data["viewer"] == {"login": "octocat", "databaseId": 1}
    assert data["rateLimit"] == {"limit": 5000, "cost": 1, "remaining": 4999, "used": 1}
    assert response.headers["X-RateLimit-Remaining"] == "4999"


def test_the_simulated_schema_uses_githubs_own_names_and_types(github_graphql_schema):
    ours = build_schema(simulated_graphql.SDL)

    for name, ours_type in ours.type_map.items():
        if name.startswith("__"):
            continue
        theirs = github_graphql_schema.type_map[name]
        assert type(theirs) is type(ours_type), name
        if is_enum_type(ours_type):
            assert set(ours_type.values) == set(theirs.values)
        if not is_object_type(ours_type):
            continue
        for field_name, field in ours_type.fields.items():
            their_field = theirs.fields[field_name]
            assert str(field.type) == str(their_field.type), f"{name}.{field_name}"
            for argument_name, argument in field.args.items():
                their_argument = their_field.args[argument_name]
                assert str(argument.type) == str(their_argument.type), f"{name}.{field_name}({argument_name})"
                assert argument.default_value == their_argument.default_value


def test_a_page_of_100_members_costs_well_under_5_ms_of_server_cpu(github, github_token):
    """In-process, to measure the server's CPU time alone; a benchmark pages a 50,000-member org 500 times."""
    github.add_org("big", size=50_000)
    auth = {"authorization": f"token {github_token}", "content-type": "application/json"}
    timings = []
    for index in range(0, 50_000, 1_000):
        variables = {"login": "big", "first": 100, "after": simulated_graphql.encode_cursor(index)}
        request = Request("POST", "/graphql", auth, json.dumps({"query": MEMBERS, "variables": variables}).encode())
        started = time.thread_time()
        with github.state.lock:
            response = api.handle(github.state, request)
        timings.append(time.thread_time() - started)
        assert response.status == 200

    assert statistics.median(timings) < 0.005


# Faults


def test_server_error_answers_5xx_on_rest_and_graphql(github, github_token):
    github.inject("server_error", times=2)
    github.inject("server_error", status=503)

    rest = get(github, "/orgs/acme", github_token)
    graph = graphql(github, github_token, "{ viewer { login } }")
    unavailable = get(github, "/orgs/acme", github_token)

    assert (rest.status_code, rest.json()) == (502, {"message": "Server Error"})
    assert graph.status_code == 502
    assert graph.json()["errors"][0]["message"].startswith("Something went wrong while executing your query.")
    assert unavailable.status_code == 503
    assert get(github, "/orgs/acme", github_token).status_code == 200


def test_connection_reset_closes_the_socket_without_an_answer(github, github_token):
    github.inject("connection_reset")

    with pytest.raises(requests.ConnectionError):
        get(github, "/user", github_token)
    assert get(github, "/user", github_token).status_code == 200


def test_rate_limit_exhausted_answers_as_github_on_rest(github, github_token):
    github.inject("rate_limit_exhausted", reset_in=120)

    response = get(github, "/orgs/acme/members", github_token)

    assert response.status_code == 403
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) == pytest.approx(time.time() + 120, abs=3)
    assert response.headers["X-RateLimit-Resource"] == "core"
    assert response.json()["message"].startswith("API rate limit exceeded for user ID 1.")
    assert response.json()["documentation_url"].startswith("https://docs.github.com/rest/")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({}, {"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}),
        (
            {"graphql_type": "RATE_LIMIT"},
            {
                "type": "RATE_LIMIT",
                "code": "graphql_rate_limit",
                "message": "API rate limit already exceeded for user ID 1.",
            },
        ),
    ],
)
def test_rate_limit_exhausted_answers_as_github_on_graphql(github, github_token, options, error):
    github.inject("rate_limit_exhausted", **options)

    response = graphql(github, github_token, MEMBERS, login="acme", first=10)

    assert response.status_code == 200
    assert response.json() == {"errors": [error]}
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Resource"] == "graphql"
    assert int(response.headers["X-RateLimit-Reset"]) == pytest.approx(time.time() + 60, abs=3)


def test_secondary_rate_limit_asks_to_retry_after(github, github_token):
    github.inject("secondary_rate_limit", times=2, retry_after=45)

    for response in (get(github, "/orgs/acme", github_token), graphql(github, github_token, "{ viewer { login } }")):
        assert response.status_code == 403
        assert response.headers["Retry-After"] == "45"
        assert int(response.headers["X-RateLimit-Remaining"]) > 0
        assert response.json()["message"].startswith("You have exceeded a secondary rate limit.")


def test_bad_credentials_fault_answers_401(github, github_token):
    github.inject("bad_credentials")

    response = get(github, "/user", github_token)

    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"


def test_sso_required_names_the_authorization_url(github, github_token):
    github.inject("sso_required", times=2)

    rest = get(github, "/orgs/acme/members", github_token)
    graph = graphql(github, github_token, MEMBERS, login="acme", first=10)

    sso = rf"required; url={re.escape(github.url)}/orgs/acme/sso\?authorization_request=[0-9a-f]+"
    message = (
        "Resource protected by organization SAML enforcement. You must grant your OAuth token access to this "
        "organization."
    )
    assert rest.status_code == 403
    assert re.fullmatch(sso, rest.headers["X-GitHub-SSO"])
    assert rest.json()["message"] == message
    assert graph.status_code == 200
    assert re.fullmatch(sso, graph.headers["X-GitHub-SSO"])
    assert graph.json()["data"]["organization"] is None
    error = graph.json()["errors"][0]
    assert (error["type"], error["path"], error["extensions"], error["message"]) == (
        "FORBIDDEN",
        ["organization"],
        {"saml_failure": True},
        message,
    )


def test_access_restricted_says_the_organization_restricts_oauth_apps(github, github_token):
    github.inject("access_restricted", times=2)

    rest = get(github, "/orgs/acme/members", github_token)
    graph = graphql(github, github_token, MEMBERS, login="acme", first=10)

    expected = (
        "Although you appear to have the correct authorization credentials, the `acme` organization has enabled "
        "OAuth App access restrictions"
    )
    assert rest.status_code == 403
    assert rest.json()["message"].startswith(expected)
    assert graph.json()["errors"][0]["type"] == "FORBIDDEN"
    assert graph.json()["errors"][0]["message"].startswith(expected)


def test_org_not_found_answers_404_and_not_found(github, github_token):
    github.inject("org_not_found", times=2)

    rest = get(github, "/orgs/acme", github_token)
    graph = graphql(github, github_token, MEMBERS, login="acme", first=10)

    assert rest.status_code == 404
    assert rest.json() == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/orgs/orgs#get-an-organization",
        "status": "404",
    }
    assert graph.status_code == 200
    assert graph.json()["data"]["organization"] is None
    assert graph.json()["errors"] == [
        {
            "type": "NOT_FOUND",
            "path": ["organization"],
            "locations": [{"line": 3, "column": 3}],
            "message": "Could not resolve to an Organization with the login of 'acme'.",
        }
    ]


def test_resource_limits_refuse_pages_above_max_first_on_graphql_only(github, github_token):
    github.inject("resource_limits", times=None, max_first=50)

    too_big = graphql(github, github_token, MEMBERS, login="acme", first=100).json()
    small_enough = members_page(github, github_token, first=50)
    rest = get(github, "/orgs/acme/members?per_page=100", github_token)

    assert too_big["data"]["organization"] is None
    assert too_big["errors"][0]["type"] == "RESOURCE_LIMITS_EXCEEDED"
    assert too_big["errors"][0]["message"] == "Resource limits for this query exceeded."
    assert too_big["errors"][0]["path"] == ["organization", "membersWithRole"]
    assert len(small_enough["edges"]) == 50
    assert len(rest.json()) == 100


def test_malformed_json_is_a_200_that_does_not_parse(github, github_token):
    github.inject("malformed_json", times=2)

    for response in (get(github, "/orgs/acme/members", github_token), graphql(github, github_token, MEMBERS)):
        assert response.status_code == 200
        with pytest.raises(requests.JSONDecodeError):
            response.json()


def test_null_fields_send_members_with_holes(github, github_token):
    github.inject("null_fields", times=None)

    nodes = [edge["node"] for edge in members_page(github, github_token, first=100)["edges"]]
    users = get(github, "/orgs/acme/members?per_page=100", github_token).json()

    assert any(node["login"] is None for node in nodes)
    assert any(node["databaseId"] is None for node in nodes)
    assert any(node["avatarUrl"] is None for node in nodes)
    assert any("email" not in node for node in nodes)
    assert any("name" not in node for node in nodes)
    assert any(node.get("name") and "<script>" in node["name"] for node in nodes)
    assert any(len(node) == 7 and None not in node.values() for node in nodes)  # and some are intact
    assert any(user["login"] is None for user in users)
    assert any(user["id"] is None for user in users)


def test_times_counts_down_and_none_lasts_until_cleared(github, github_token):
    github.inject("server_error", times=2)
    statuses = [get(github, "/user", github_token).status_code for _ in range(3)]
    github.inject("server_error", times=None)
    lasting = [get(github, "/user", github_token).status_code for _ in range(3)]
    github.clear_faults()

    assert statuses == [502, 502, 200]
    assert lasting == [502, 502, 502]
    assert get(github, "/user", github_token).status_code == 200


def test_a_path_limits_where_a_fault_applies(github, github_token):
    github.inject("server_error", times=None, path="/graphql")

    assert get(github, "/orgs/acme", github_token).status_code == 200
    assert graphql(github, github_token, "{ viewer { login } }").status_code == 502


def test_faults_leave_the_oauth_pages_alone_unless_their_path_names_them(github):
    authorize = "/login/oauth/authorize?client_id=app&redirect_uri=http://127.0.0.1:9/callback"
    github.inject("server_error", times=None)
    untouched = get(github, authorize)
    github.inject("server_error", times=None, path="/login/oauth/")

    assert untouched.status_code == 200
    assert get(github, authorize).status_code == 502


def test_unknown_faults_and_options_are_refused(github):
    with pytest.raises(ValueError, match="Unknown fault"):
        github.inject("meteor_strike")
    with pytest.raises(ValueError, match="takes no option"):
        github.inject("server_error", retry_after=3)
    with pytest.raises(ValueError, match="5xx"):
        github.inject("server_error", status=404)


def test_latency_is_added_to_every_request(github, github_token):
    github.set_latency(200)

    started = time.monotonic()
    get(github, "/user", github_token)

    assert time.monotonic() - started >= 0.2


# OAuth


def authorize_query(**overrides):
    return {
        "client_id": "member-sync",
        "redirect_uri": "http://127.0.0.1:8000/integrations/github/callback/",
        "state": "s7a7e",
        "scope": "read:org user",
        **overrides,
    }


def test_the_authorize_page_looks_like_githubs(github):
    response = requests.get(f"{github.url}/login/oauth/authorize", params=authorize_query(), timeout=10)

    page = response.text
    assert response.status_code == 200
    assert 'Authorize <span class="app">member-sync</span>' in page
    assert re.search(r'<button type="submit" class="btn-primary">Authorize</button>', page)
    assert ">Cancel</a>" in page
    assert "Organizations and teams" in page
    assert "<code>read:org</code>" in page
    assert "acme" in page


def test_authorize_then_exchange_gives_a_token_with_the_requested_scopes(github):
    authorized = requests.post(
        f"{github.url}/login/oauth/authorize", data=authorize_query(), allow_redirects=False, timeout=10
    )
    location = urlsplit(authorized.headers["Location"])
    callback = parse_qs(location.query)
    exchange = {"client_id": "member-sync", "client_secret": "secret", "code": callback["code"][0]}

    token = requests.post(
        f"{github.url}/login/oauth/access_token", data=exchange, headers={"Accept": "application/json"}, timeout=10
    )
    again = requests.post(f"{github.url}/login/oauth/access_token", data=exchange, timeout=10)

    assert authorized.status_code == 302
    assert f"{location.scheme}://{location.netloc}{location.path}" == authorize_query()["redirect_uri"]
    assert callback["state"] == ["s7a7e"]
    body = token.json()
    assert (body["token_type"], body["scope"]) == ("bearer", "read:org,user")
    assert re.fullmatch(r"gho_[A-Za-z0-9]{36}", body["access_token"])
    user = get(github, "/user", body["access_token"])
    assert (user.status_code, user.headers["X-OAuth-Scopes"]) == (200, "read:org, user")
    # A code works once; GitHub answers a used one with 200 and an error, form-encoded unless JSON was asked for.
    assert again.status_code == 200
    assert parse_qs(again.text)["error"] == ["bad_verification_code"]


def test_a_bad_code_or_wrong_client_is_refused_as_github_does(github):
    bad_code = requests.post(
        f"{github.url}/login/oauth/access_token",
        json={"client_id": "member-sync", "client_secret": "secret", "code": "0123456789abcdef0123"},
        headers={"Accept": "application/json"},
        timeout=10,
    )
    code = github.state.codes.issue("member-sync", authorize_query()["redirect_uri"], ("read:org",))
    wrong_client = requests.post(
        f"{github.url}/login/oauth/access_token",
        json={"client_id": "another-app", "client_secret": "secret", "code": code},
        headers={"Accept": "application/json"},
        timeout=10,
    )

    assert bad_code.status_code == 200
    assert bad_code.json() == {
        "error": "bad_verification_code",
        "error_description": "The code passed is incorrect or expired.",
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
    }
    assert wrong_client.json()["error"] == "incorrect_client_credentials"


def test_cancel_redirects_with_access_denied(github):
    page = requests.get(f"{github.url}/login/oauth/authorize", params=authorize_query(), timeout=10).text
    cancel = re.search(r'<a class="cancel" href="([^"]+)">Cancel</a>', page).group(1).replace("&amp;", "&")

    response = requests.get(f"{github.url}{cancel}", allow_redirects=False, timeout=10)

    callback = parse_qs(urlsplit(response.headers["Location"]).query)
    assert response.status_code == 302
    assert callback["error"] == ["access_denied"]
    assert callback["error_description"] == ["The user has denied your application access."]
    assert callback["state"] == ["s7a7e"]
    assert "error_uri" in callback


def test_authorize_refuses_a_missing_client_or_a_redirect_that_is_not_a_web_url(github):
    no_client = requests.get(f"{github.url}/login/oauth/authorize", params=authorize_query(client_id=""), timeout=10)
    script = requests.get(
        f"{github.url}/login/oauth/authorize", params=authorize_query(redirect_uri="javascript:alert(1)"), timeout=10
    )

    assert no_client.status_code == 404
    assert script.status_code == 400


# Membership changes between runs


def test_membership_changes_between_runs_are_visible(github, github_token):
    org = github.org("acme")
    before = {edge["node"]["databaseId"]: edge for edge in all_member_edges(github, github_token)}

    added = org.add_members(5)
    removed = org.remove_members(4)
    renamed = org.rename_members(3)
    roles = org.change_roles(2)
    profiles = org.update_profiles(2)
    after = {edge["node"]["databaseId"]: edge for edge in all_member_edges(github, github_token)}

    assert len(after) == org.size == 251
    assert {member.database_id for member in added} <= after.keys() - before.keys()
    assert {member.database_id for member in removed} == before.keys() - after.keys()
    for member in renamed:
        assert after[member.database_id]["node"]["login"] == member.login != before[member.database_id]["node"]["login"]
    for member in roles:
        assert after[member.database_id]["role"] == member.role != before[member.database_id]["role"]
    for member in profiles:
        node = after[member.database_id]["node"]
        assert (node["name"], node["email"]) == (member.name, member.email)
        assert node["name"] != before[member.database_id]["node"]["name"]
    assert get(github, f"/orgs/acme/memberships/{renamed[0].login}", github_token).status_code == 200
    old_login = before[renamed[0].database_id]["node"]["login"]
    assert get(github, f"/orgs/acme/memberships/{old_login}", github_token).status_code == 404


def test_a_login_given_up_in_a_rename_can_go_to_another_member(github, github_token):
    org = github.org("acme")
    first, second = org.members[1], org.members[2]

    org.rename_member(first.login, "first-renamed")
    org.rename_member(second.login, first.login)

    reused = get(github, f"/orgs/acme/memberships/{first.login}", github_token).json()
    assert reused["user"]["id"] == second.database_id
    assert get(github, "/orgs/acme/memberships/first-renamed", github_token).json()["user"]["id"] == first.database_id
    with pytest.raises(ValueError, match="already"):
        org.rename_member(org.members[3].login, "first-renamed")


def test_a_renamed_organization_keeps_its_id_and_its_old_login_is_not_found(github, github_token):
    org = github.org("acme")

    org.rename("acme-corp")

    assert get(github, "/orgs/acme", github_token).status_code == 404
    renamed = get(github, "/orgs/acme-corp", github_token).json()
    assert (renamed["login"], renamed["id"]) == ("acme-corp", org.id)
    payload = graphql(github, github_token, MEMBERS, login="acme", first=1).json()
    assert payload["errors"][0]["type"] == "NOT_FOUND"
    assert members_page(github, github_token, login="acme-corp", first=1)["totalCount"] == 250


def test_organizations_are_the_same_for_the_same_login_and_size():
    first, second = Simulator(orgs={"globex": 300, "initech": 40}), Simulator(orgs={"globex": 300})

    globex = first.org("globex").members
    assert globex == second.org("globex").members
    assert first.org("globex").id == second.org("globex").id
    assert len({member.login for member in globex}) == 300
    ids = [member.database_id for member in globex]
    assert max(ids) < 2**31  # GraphQL Int
    assert not set(ids[1:]) & {member.database_id for member in first.org("initech").members}


# Control API, reset, the HTTP layer, the management command


def test_the_control_api_drives_the_same_simulator(github):
    control = f"{github.url}/_simulator"
    token = requests.post(f"{control}/tokens", json={"scopes": ["read:org"]}, timeout=10).json()["token"]

    created = requests.post(f"{control}/orgs", json={"login": "initech", "size": 40}, timeout=10)
    changed = requests.post(
        f"{control}/orgs/initech/changes",
        json={"add": 2, "remove": 1, "rename": 1, "roles": 1, "profiles": 1, "rename_to": "initrode"},
        timeout=10,
    )
    members = requests.get(f"{control}/orgs/initrode", timeout=10).json()["members"]
    fault = requests.post(f"{control}/faults", json={"fault": "server_error", "times": 1, "status": 503}, timeout=10)
    statuses = [get(github, "/orgs/initrode", token).status_code for _ in range(2)]
    requests.post(f"{control}/faults", json={"fault": "org_not_found", "times": None}, timeout=10)
    lasting = get(github, "/orgs/initrode", token).status_code
    requests.delete(f"{control}/faults", timeout=10)
    cleared = get(github, "/orgs/initrode", token).status_code
    requests.post(f"{control}/latency", json={"ms": 150}, timeout=10)
    started = time.monotonic()
    get(github, "/user", token)
    slowed = time.monotonic() - started
    stats = requests.get(f"{control}/stats", timeout=10).json()

    assert (created.status_code, created.json()["size"]) == (201, 40)
    assert changed.status_code == 200
    assert (changed.json()["login"], changed.json()["size"], len(changed.json()["added"])) == ("initrode", 41, 2)
    assert len(members) == 41
    assert fault.status_code == 201
    assert statuses == [503, 200]
    assert (lasting, cleared) == (404, 200)
    assert slowed >= 0.15
    assert stats == {"requests": 5} == {"requests": github.request_count}


def test_the_control_api_revokes_tokens_resets_and_refuses_nonsense(github):
    control = f"{github.url}/_simulator"
    token = requests.post(f"{control}/tokens", json={"scopes": ["read:org"]}, timeout=10).json()["token"]
    requests.post(f"{control}/orgs", json={"login": "initech", "size": 4}, timeout=10)

    revoked = requests.delete(f"{control}/tokens/{token}", timeout=10)
    after_revoke = get(github, "/user", token).status_code
    reset = requests.post(f"{control}/reset", timeout=10)

    assert (revoked.status_code, after_revoke, reset.status_code) == (204, 401, 204)
    assert github.state.orgs.find("initech") is None
    assert requests.get(f"{control}/stats", timeout=10).json() == {"requests": 0}
    assert requests.post(f"{control}/faults", json={"fault": "nope"}, timeout=10).status_code == 400
    assert requests.post(f"{control}/latency", json={}, timeout=10).status_code == 400
    assert requests.post(f"{control}/orgs/nobody/changes", json={"add": 1}, timeout=10).status_code == 404


def test_reset_restores_the_constructors_organizations_and_keeps_tokens(github, github_token):
    github.add_org("globex", size=5)
    github.org("acme").remove_members(10)
    github.inject("server_error", times=None)
    github.set_latency(1000)
    github.reset()

    started = time.monotonic()
    response = get(github, "/orgs/acme", github_token)

    assert time.monotonic() - started < 1
    assert response.status_code == 200
    assert github.org("acme").size == 250
    with pytest.raises(KeyError):
        github.org("globex")
    assert github.requests == [("GET", "/orgs/acme")]
    assert github.request_count == 1


def test_requests_are_counted_without_the_control_api(github, github_token):
    get(github, "/orgs/acme/members?per_page=5", github_token)
    requests.get(f"{github.url}/_simulator/stats", timeout=10)
    graphql(github, github_token, "{ viewer { login } }")

    assert github.requests == [("GET", "/orgs/acme/members?per_page=5"), ("POST", "/graphql")]


def test_a_client_keeps_its_connection_alive_between_requests(github, github_token):
    host, port = urlsplit(github.url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    sockets = []
    for _ in range(3):
        connection.request("GET", "/orgs/acme", headers={"Authorization": f"token {github_token}"})
        response = connection.getresponse()
        response.read()
        sockets.append(connection.sock)
        assert (response.status, response.version) == (200, 11)
    connection.close()

    assert sockets[0] is sockets[1] is sockets[2]


def test_answers_come_without_waiting_on_delayed_acks(github, github_token):
    session = requests.Session()
    session.headers["Authorization"] = f"token {github_token}"
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        session.get(f"{github.url}/orgs/acme", timeout=10)
        timings.append(time.perf_counter() - started)

    # Nagle's algorithm would hold each body back some 40 ms.
    assert statistics.median(timings) < 0.025


def test_the_management_command_serves_on_a_free_port_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "manage.py", "github_simulator", "--port", "0", "--org", "globex=30"],
        cwd=ROOT,
        env={**os.environ, "SECRET_KEY": os.environ.get("SECRET_KEY", "test")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
    try:
        wait_for(lambda: any("listening on" in line for line in output), timeout=30, message="the simulator to start")
        url = re.fullmatch(r"GitHub simulator listening on (http://127\.0\.0\.1:[1-9]\d*)", output[0].strip())
        assert url is not None
        token = requests.post(f"{url.group(1)}/_simulator/tokens", json={"scopes": ["read:org"]}, timeout=10).json()
        user = requests.get(f"{url.group(1)}/user", headers={"Authorization": f"token {token['token']}"}, timeout=10)
        org = requests.get(
            f"{url.group(1)}/orgs/globex", headers={"Authorization": f"token {token['token']}"}, timeout=10
        )

        process.send_signal(signal.SIGTERM)

        assert process.wait(timeout=15) == 0
        assert (user.status_code, user.json()["login"]) == (200, "octocat")
        assert org.status_code == 200
    finally:
        if process.poll() is None:
            process.kill()
