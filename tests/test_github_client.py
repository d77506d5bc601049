"""The GitHub client, with GitHub replaced at the client's edge: a fake transport adapter mounted on
its session answers each request. Retries are urllib3's business, below any transport adapter, so
the few tests about them talk to a small local HTTP server instead."""

import io
import json
import pickle
import threading
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

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
from integrations.github.records import OAuthToken

API = "https://api.github.test"
GRAPHQL = f"{API}/graphql"
WEB = "https://github.test"
TOKEN = "gho_ThisTokenMustNeverLeak0123456789"
SSO_URL = f"{WEB}/orgs/acme/sso?authorization_request=AZSCKtL4U8yX1H3sCQIVnVg"
RESTRICTED = (
    "Although you appear to have the correct authorization credentials, the `acme` organization has enabled "
    "OAuth App access restrictions, meaning that data access to third-parties is limited."
)


@dataclass
class Answer:
    status: int = 200
    json: object = None
    body: bytes | None = None
    headers: dict = field(default_factory=dict)

    def content(self) -> bytes:
        return self.body if self.body is not None else json.dumps(self.json).encode()


class FakeGitHub(BaseAdapter):
    """Answers queued per (method, path), used in order, the last one again and again."""

    def __init__(self):
        super().__init__()
        self.answers = {}
        self.sent = []

    def on(self, method, path, *answers):
        self.answers.setdefault((method, path), []).extend(answers)

    def send(self, request, **kwargs):
        self.sent.append((request, kwargs))
        queue = self.answers.get((request.method, urlsplit(request.url).path))
        if not queue:
            raise AssertionError(f"unexpected request: {request.method} {request.url}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        response = requests.Response()
        response.status_code = answer.status
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **answer.headers})
        response.raw = io.BytesIO(answer.content())
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass

    def graphql_variables(self):
        return [json.loads(request.body)["variables"] for request, _ in self.sent if request.method == "POST"]

    def queries(self):
        return [parse_qs(urlsplit(request.url).query) for request, _ in self.sent]


def user(number, **fields):
    return {
        "id": f"U_{number}",
        "databaseId": number,
        "login": f"user{number}",
        "name": f"User {number}",
        "email": f"user{number}@example.com",
        "avatarUrl": f"https://avatars.example.com/u/{number}",
        **fields,
    }


def edge(number, role="MEMBER", **fields):
    return {"role": role, "node": user(number, **fields)}


def members_page(*edges, total=None, next_cursor=None, reset_at="2030-01-01T00:00:00Z"):
    return {
        "data": {
            "organization": {
                "id": "O_1",
                "databaseId": 1001,
                "login": "acme",
                "membersWithRole": {
                    "totalCount": len(edges) if total is None else total,
                    "pageInfo": {
                        "hasNextPage": next_cursor is not None,
                        "endCursor": next_cursor or "Y3Vyc29yOmVuZA==",
                    },
                    "edges": list(edges),
                },
            },
            "rateLimit": {"cost": 1, "remaining": 4990, "resetAt": reset_at},
        }
    }


def graphql_error(type_, message, path=None, **extensions):
    error = {"type": type_, "message": message, "locations": [{"line": 3, "column": 3}]}
    if path is not None:
        error["path"] = path
    if extensions:
        error["extensions"] = extensions
    return error


def rest_user(number):
    return {
        "login": f"user{number}",
        "id": number,
        "node_id": f"U_{number}",
        "avatar_url": f"https://avatars.example.com/u/{number}",
        "type": "User",
        "site_admin": False,
    }


def rest_org(number, login):
    return {"login": login, "id": number, "node_id": f"O_{number}", "avatar_url": "", "description": None}


@pytest.fixture
def fake():
    return FakeGitHub()


@pytest.fixture
def client(fake):
    client = GitHubClient(TOKEN, api_url=API, graphql_url=GRAPHQL, web_url=WEB, backoff_factor=0)
    client.session.mount("https://", fake)
    return client


def run(callable_, *args, **kwargs):
    """Call, and read a generator to its end: the client's page iterators do their work lazily."""
    result = callable_(*args, **kwargs)
    return list(result) if hasattr(result, "__next__") else result


def raised(callable_, *args, **kwargs) -> GitHubError:
    with pytest.raises(GitHubError) as info:
        run(callable_, *args, **kwargs)
    return info.value


def read_members(client, login="acme", **kwargs):
    return list(client.iter_member_pages(login, **kwargs))


# Reading


def test_viewer_is_the_tokens_account(client, fake):
    fake.on("GET", "/user", Answer(json={**rest_user(7), "name": None}))

    viewer = client.viewer()

    assert (viewer.id, viewer.login, viewer.name) == (7, "user7", "")


def test_organization_is_read_into_a_typed_record(client, fake):
    fake.on("GET", "/orgs/acme", Answer(json={**rest_org(1001, "acme"), "name": None}))

    organization = client.organization("acme")

    assert (organization.id, organization.login, organization.name, organization.avatar_url) == (1001, "acme", "", "")


def test_organization_login_is_quoted_into_the_path(client, fake):
    fake.on("GET", "/orgs/a%2Fb%3Fc", Answer(status=404, json={"message": "Not Found"}))

    assert isinstance(raised(client.organization, "a/b?c"), OrganizationNotFound)


def test_viewer_organizations_follow_the_link_header(client, fake):
    fake.on(
        "GET",
        "/user/orgs",
        Answer(json=[rest_org(1, "one")], headers={"Link": f'<{API}/user/orgs?per_page=100&page=2>; rel="next"'}),
        Answer(json=[rest_org(2, "two")], headers={"Link": f'<{API}/user/orgs?per_page=100&page=1>; rel="prev"'}),
    )

    organizations = client.viewer_organizations()

    assert [organization.login for organization in organizations] == ["one", "two"]
    assert [query.get("page") for query in fake.queries()] == [None, ["2"]]


def test_a_page_link_to_another_host_is_refused_before_the_token_goes_there(client, fake):
    fake.on(
        "GET",
        "/user/orgs",
        Answer(json=[rest_org(1, "one")], headers={"Link": '<https://evil.example/user/orgs?page=2>; rel="next"'}),
    )

    assert isinstance(raised(client.viewer_organizations), MalformedResponse)
    assert len(fake.sent) == 1


def test_page_links_that_loop_are_refused(client, fake):
    loop = {"Link": f'<{API}/user/orgs?page=2>; rel="next"'}
    fake.on("GET", "/user/orgs", Answer(json=[rest_org(1, "one")], headers=loop))

    assert isinstance(raised(client.viewer_organizations), MalformedResponse)
    assert len(fake.sent) == 2


def test_member_pages_follow_the_cursor_one_after_another(client, fake):
    fake.on(
        "POST",
        "/graphql",
        Answer(json=members_page(edge(1, "ADMIN"), edge(2), total=3, next_cursor="Y3Vyc29yOjI=")),
        Answer(json=members_page(edge(3), total=3)),
    )

    pages = read_members(client)

    assert [[member.login for member in page.members] for page in pages] == [["user1", "user2"], ["user3"]]
    assert [page.has_next_page for page in pages] == [True, False]
    assert pages[0].total == 3
    assert pages[0].members[0].role == "admin"
    assert pages[0].members[1].role == "member"
    assert fake.graphql_variables() == [
        {"login": "acme", "first": 100, "after": None},
        {"login": "acme", "first": 100, "after": "Y3Vyc29yOjI="},
    ]


def test_a_member_record_carries_ids_and_profile(client, fake):
    fake.on("POST", "/graphql", Answer(json=members_page(edge(42, "ADMIN"))))

    [member] = read_members(client)[0].members

    assert member.model_dump() == {
        "github_id": 42,
        "node_id": "U_42",
        "login": "user42",
        "name": "User 42",
        "email": "user42@example.com",
        "avatar_url": "https://avatars.example.com/u/42",
        "role": "admin",
    }


def test_null_name_email_and_avatar_become_empty_strings(client, fake):
    fake.on("POST", "/graphql", Answer(json=members_page(edge(1, name=None, email=None, avatarUrl=None))))

    [member] = read_members(client)[0].members

    assert (member.name, member.email, member.avatar_url) == ("", "", "")


def test_untrusted_text_is_cleaned_but_html_is_left_to_escaping(client, fake):
    fake.on(
        "POST",
        "/graphql",
        Answer(
            json=members_page(
                edge(1, name="<b>Mallory</b>\x00\u202e\n", email="not an email", avatarUrl="javascript:alert(1)"),
                edge(2, name="x" * 5000),
            )
        ),
    )

    first, second = read_members(client)[0].members

    assert first.name == "<b>Mallory</b>\u202e"
    assert (first.email, first.avatar_url) == ("", "")
    assert len(second.name) == 1024


@pytest.mark.parametrize(
    ("avatar_url", "kept"),
    [
        ("https://avatars.githubusercontent.com/u/1?v=4", True),
        ("http://localhost:8000/a.png", True),
        # Past the plain form, the full check decides.
        ("HTTPS://AVATARS.EXAMPLE.COM/u/1", True),
        ("https://user@avatars.example.com/u/1", True),
        ("https://bücher.example/a.png", True),
        ("https://avatars.example.com/u/1 x", False),
        ("https://avatars.example.com/\x85", False),
        ("ftp://avatars.example.com/u/1", False),
        ("https:///u/1", False),
        ("//avatars.example.com/u/1", False),
        ("https://avatars.example.com/" + "x" * 2048, False),
    ],
)
def test_only_plausible_web_urls_are_kept(client, fake, avatar_url, kept):
    fake.on("POST", "/graphql", Answer(json=members_page(edge(1, avatarUrl=avatar_url))))

    [member] = read_members(client)[0].members

    assert member.avatar_url == (avatar_url if kept else "")


@pytest.mark.parametrize(
    "bad_edge",
    [
        edge(1, databaseId=None),
        edge(1, login=None),
        edge(1, login=""),
        edge(1, login="<script>"),
        edge(1, databaseId="1"),
        edge(1, databaseId=0),
        edge(1, databaseId=2**63),
        edge(1, id=None),
        {"role": "MEMBER", "node": None},
        {"role": None, "node": user(1)},
        {"role": "OWNER", "node": user(1)},
        None,
        "user1",
    ],
)
def test_an_unusable_member_record_is_skipped_and_counted(client, fake, bad_edge):
    fake.on("POST", "/graphql", Answer(json=members_page(edge(2), bad_edge, edge(3))))

    [page] = read_members(client)

    assert [member.github_id for member in page.members] == [2, 3]
    assert page.skipped == 1


def test_an_error_inside_one_member_record_skips_only_that_record(client, fake):
    answer = members_page(edge(1), edge(2, email=None))
    answer["errors"] = [
        graphql_error("FORBIDDEN", "No access.", path=["organization", "membersWithRole", "edges", 1, "node", "email"])
    ]
    fake.on("POST", "/graphql", Answer(json=answer))

    [page] = read_members(client)

    assert [member.github_id for member in page.members] == [1]
    assert page.skipped == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html>Unicorn!</html>",
        b'{"data": {"organization": {"login": "acme"}}}',
        json.dumps(
            {"data": members_page()["data"] | {"organization": {"login": "acme", "membersWithRole": None}}}
        ).encode(),
        b'{"data": null}',
        b"[]",
        b"",
    ],
)
def test_an_answer_that_does_not_validate_is_malformed(client, fake, body):
    fake.on("POST", "/graphql", Answer(body=body))

    error = raised(read_members, client)

    assert isinstance(error, MalformedResponse)
    assert not error.transient


def test_a_cursor_that_does_not_advance_is_malformed(client, fake):
    fake.on(
        "POST",
        "/graphql",
        Answer(json=members_page(edge(1), next_cursor="c1")),
        Answer(json=members_page(edge(2), next_cursor="c1")),
    )

    assert isinstance(raised(read_members, client), MalformedResponse)


def test_an_oversized_answer_is_refused(client, fake, monkeypatch):
    monkeypatch.setattr("integrations.github.transport.MAX_BODY_BYTES", 1000)
    fake.on("POST", "/graphql", Answer(json=members_page(*(edge(number) for number in range(1, 50)))))

    assert isinstance(raised(read_members, client), MalformedResponse)


# Resource limits and the REST fallback


def resource_limits_exceeded():
    return Answer(
        json={
            "data": {"organization": None},
            "errors": [
                graphql_error(
                    "RESOURCE_LIMITS_EXCEEDED",
                    "Resource limits for this query exceeded.",
                    path=["organization", "membersWithRole"],
                )
            ],
        }
    )


def test_resource_limits_halve_the_page_size_and_ask_for_the_same_cursor_again(client, fake):
    fake.on(
        "POST",
        "/graphql",
        Answer(json=members_page(edge(1), next_cursor="c1")),
        resource_limits_exceeded(),
        resource_limits_exceeded(),
        Answer(json=members_page(edge(2), next_cursor="c2")),
        Answer(json=members_page(edge(3))),
    )

    pages = read_members(client)

    assert [page.members[0].github_id for page in pages] == [1, 2, 3]
    assert [(variables["first"], variables["after"]) for variables in fake.graphql_variables()] == [
        (100, None),
        (100, "c1"),
        (50, "c1"),
        (25, "c1"),
        (25, "c2"),
    ]


def test_halving_stops_at_a_floor_and_gives_up(client, fake):
    fake.on("POST", "/graphql", resource_limits_exceeded())

    error = raised(read_members, client)

    assert isinstance(error, GitHubUnavailable)
    assert [variables["first"] for variables in fake.graphql_variables()] == [100, 50, 25, 12, 6]


def test_without_graphql_the_members_are_read_over_rest_admins_then_members(client, fake):
    fake.on("POST", "/graphql", Answer(status=404, json={"message": "Not Found"}))
    second_page = f"{API}/orgs/acme/members?role=member&per_page=100&page=2"
    fake.on(
        "GET",
        "/orgs/acme/members",
        Answer(json=[rest_user(1)]),
        Answer(json=[rest_user(2)], headers={"Link": f'<{second_page}>; rel="next"'}),
        Answer(json=[rest_user(3)]),
    )

    pages = read_members(client)

    assert [[(member.github_id, member.role) for member in page.members] for page in pages] == [
        [(1, "admin")],
        [(2, "member")],
        [(3, "member")],
    ]
    assert [page.has_next_page for page in pages] == [True, True, False]
    assert {page.total for page in pages} == {None}
    assert pages[0].members[0].name == ""
    rest_queries = fake.queries()[1:]
    assert [(query.get("role"), query.get("per_page"), query.get("page")) for query in rest_queries] == [
        (["admin"], ["100"], None),
        (["member"], ["100"], None),
        (["member"], ["100"], ["2"]),
    ]


def test_rest_member_pages_skip_and_count_unusable_records(client, fake):
    fake.on("GET", "/orgs/acme/members", Answer(json=[rest_user(1), {**rest_user(2), "id": None}, "junk"]))

    pages = list(client.iter_member_pages_rest("acme"))

    assert [member.github_id for member in pages[0].members] == [1]
    assert pages[0].skipped == 2


def test_a_redirect_to_the_public_members_means_no_access(client, fake):
    fake.on("GET", "/orgs/acme/members", Answer(status=302, headers={"Location": f"{API}/orgs/acme/public_members"}))

    assert isinstance(raised(client.iter_member_pages_rest, "acme"), OrganizationNotFound)
    assert len(fake.sent) == 1


# What goes wrong, and what the user reads


def test_it_raises_bad_credentials_on_401(client, fake):
    fake.on("POST", "/graphql", Answer(status=401, json={"message": "Bad credentials"}))

    error = raised(read_members, client)

    assert isinstance(error, BadCredentials)
    assert "Reconnect GitHub" in str(error)
    assert not error.transient


def test_it_raises_sso_required_with_githubs_url(client, fake):
    fake.on(
        "GET",
        "/orgs/acme",
        Answer(
            status=403,
            headers={"X-GitHub-SSO": f"required; url={SSO_URL}"},
            json={"message": "Resource protected by organization SAML enforcement."},
        ),
    )

    error = raised(client.organization, "acme")

    assert isinstance(error, SSORequired)
    assert error.url == SSO_URL
    assert SSO_URL in str(error)


def test_an_sso_url_away_from_github_is_replaced_by_the_organizations_sso_page(client, fake):
    fake.on(
        "GET",
        "/orgs/acme",
        Answer(status=403, headers={"X-GitHub-SSO": "required; url=https://phish.example/login"}),
    )

    error = raised(client.organization, "acme")

    assert isinstance(error, SSORequired)
    assert error.url == f"{WEB}/orgs/acme/sso"


def test_a_graphql_saml_failure_raises_sso_required(client, fake):
    fake.on(
        "POST",
        "/graphql",
        Answer(
            headers={"X-GitHub-SSO": f"required; url={SSO_URL}"},
            json={
                "data": {"organization": None},
                "errors": [
                    graphql_error(
                        "FORBIDDEN",
                        "Resource protected by organization SAML enforcement. You must grant your Personal Access "
                        "token access to this organization.",
                        path=["organization"],
                        saml_failure=True,
                    )
                ],
            },
        ),
    )

    error = raised(read_members, client)

    assert isinstance(error, SSORequired)
    assert error.url == SSO_URL


def test_it_raises_access_restricted_on_oauth_app_access_restrictions(client, fake):
    fake.on("GET", "/orgs/acme", Answer(status=403, json={"message": RESTRICTED}))

    error = raised(client.organization, "acme")

    assert isinstance(error, AccessRestricted)
    assert "owner must approve" in str(error)
    assert "https://docs.github.com/" in str(error)


def test_a_graphql_forbidden_for_access_restrictions_raises_access_restricted(client, fake):
    fake.on(
        "POST",
        "/graphql",
        Answer(
            json={"data": {"organization": None}, "errors": [graphql_error("FORBIDDEN", RESTRICTED, ["organization"])]}
        ),
    )

    error = raised(read_members, client)

    assert isinstance(error, AccessRestricted)
    assert error.login == "acme"


def test_it_raises_organization_not_found_on_404(client, fake):
    fake.on("GET", "/orgs/gone", Answer(status=404, json={"message": "Not Found"}))

    error = raised(client.organization, "gone")

    assert isinstance(error, OrganizationNotFound)
    assert error.login == "gone"
    assert "gone" in str(error)


def test_a_graphql_not_found_raises_organization_not_found(client, fake):
    fake.on(
        "POST",
        "/graphql",
        Answer(
            json={
                "data": {"organization": None},
                "errors": [
                    graphql_error(
                        "NOT_FOUND", "Could not resolve to an Organization with the login of 'gone'.", ["organization"]
                    )
                ],
            }
        ),
    )

    error = raised(read_members, client, "gone")

    assert isinstance(error, OrganizationNotFound)
    assert error.login == "gone"


def test_a_null_organization_without_errors_is_not_found(client, fake):
    fake.on("POST", "/graphql", Answer(json={"data": {"organization": None}}))

    assert isinstance(raised(read_members, client), OrganizationNotFound)


def test_it_raises_scope_missing_when_the_token_lacks_read_org(client, fake):
    fake.on("POST", "/graphql", Answer(json=members_page(edge(1)), headers={"X-OAuth-Scopes": "repo, gist"}))

    error = raised(read_members, client)

    assert isinstance(error, ScopeMissing)
    assert error.scope == "read:org"
    assert "read:org" in str(error)
    assert "Reconnect GitHub" in str(error)


@pytest.mark.parametrize("scopes", ["read:org", "repo, write:org", "admin:org"])
def test_read_org_or_a_scope_that_implies_it_is_enough(client, fake, scopes):
    fake.on("POST", "/graphql", Answer(json=members_page(edge(1)), headers={"X-OAuth-Scopes": scopes}))

    assert read_members(client)[0].members[0].github_id == 1


def test_viewer_organizations_need_read_org(client, fake):
    fake.on("GET", "/user/orgs", Answer(json=[rest_org(1, "one")], headers={"X-OAuth-Scopes": ""}))

    assert isinstance(raised(client.viewer_organizations), ScopeMissing)


def test_a_graphql_insufficient_scopes_error_raises_scope_missing(client, fake):
    message = (
        "Your token has not been granted the required scopes to execute this query. The 'membersWithRole' field "
        "requires one of the following scopes: ['read:org'], but your token has only been granted the: ['repo'] "
        "scopes."
    )
    fake.on("POST", "/graphql", Answer(json={"data": None, "errors": [graphql_error("INSUFFICIENT_SCOPES", message)]}))

    error = raised(read_members, client)

    assert isinstance(error, ScopeMissing)
    assert error.scope == "read:org"


def test_a_403_naming_accepted_scopes_the_token_lacks_raises_scope_missing(client, fake):
    fake.on(
        "GET",
        "/orgs/acme/members",
        Answer(
            status=403,
            headers={"X-OAuth-Scopes": "gist", "X-Accepted-OAuth-Scopes": "admin:org, read:org, write:org"},
            json={"message": "Must have admin rights to Repository."},
        ),
    )

    error = raised(client.iter_member_pages_rest, "acme")

    assert isinstance(error, ScopeMissing)
    assert error.scope == "read:org"


def test_an_unexplained_403_is_a_github_error(client, fake):
    fake.on("GET", "/orgs/acme", Answer(status=403, json={"message": "Forbidden"}))

    error = raised(client.organization, "acme")

    assert type(error) is GitHubError
    assert "HTTP 403" in str(error)


def in_seconds(seconds):
    return datetime.now(UTC) + timedelta(seconds=seconds)


def assert_close(moment, expected):
    assert abs(moment - expected) < timedelta(seconds=5)


def test_a_primary_rate_limit_waits_until_the_reset(client, fake):
    reset = in_seconds(600).replace(microsecond=0)
    fake.on(
        "GET",
        "/orgs/acme",
        Answer(
            status=403,
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(reset.timestamp()))},
            json={"message": "API rate limit exceeded for user ID 1."},
        ),
    )

    error = raised(client.organization, "acme")

    assert isinstance(error, RateLimited)
    assert error.transient
    assert error.reset_at == reset
    assert error.reset_at.tzinfo is UTC
    assert f"waiting until {reset:%H:%M} UTC" in str(error)


def test_a_secondary_rate_limit_honours_retry_after(client, fake):
    fake.on("POST", "/graphql", Answer(status=429, headers={"Retry-After": "30"}, json={"message": "slow down"}))

    error = raised(read_members, client)

    assert isinstance(error, RateLimited)
    assert_close(error.reset_at, in_seconds(30))


def test_a_secondary_rate_limit_without_headers_waits_a_minute(client, fake):
    fake.on(
        "GET",
        "/orgs/acme",
        Answer(status=403, json={"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}),
    )

    error = raised(client.organization, "acme")

    assert isinstance(error, RateLimited)
    assert_close(error.reset_at, in_seconds(60))


def test_a_reset_further_than_an_hour_is_not_believed(client, fake):
    fake.on(
        "GET",
        "/orgs/acme",
        Answer(status=403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "99999999999"}),
    )

    error = raised(client.organization, "acme")

    assert_close(error.reset_at, in_seconds(3600))


def test_a_graphql_rate_limited_error_waits_until_the_reset_header(client, fake):
    reset = in_seconds(900).replace(microsecond=0)
    fake.on(
        "POST",
        "/graphql",
        Answer(
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(reset.timestamp()))},
            json={"errors": [graphql_error("RATE_LIMITED", "API rate limit exceeded for user ID 1.")]},
        ),
    )

    error = raised(read_members, client)

    assert isinstance(error, RateLimited)
    assert error.reset_at == reset


def test_the_newer_rate_limit_error_type_is_understood_too(client, fake):
    error = {"type": "RATE_LIMIT", "code": "graphql_rate_limit", "message": "API rate limit already exceeded."}
    fake.on("POST", "/graphql", Answer(json={"errors": [error]}))

    assert isinstance(raised(read_members, client), RateLimited)


def test_a_graphql_rate_limited_error_without_headers_uses_the_last_reset_at(client, fake):
    reset = in_seconds(1200).replace(microsecond=0)
    fake.on(
        "POST",
        "/graphql",
        Answer(json=members_page(edge(1), next_cursor="c1", reset_at=reset.isoformat())),
        Answer(json={"errors": [graphql_error("RATE_LIMITED", "API rate limit exceeded for user ID 1.")]}),
    )

    error = raised(read_members, client)

    assert isinstance(error, RateLimited)
    assert error.reset_at == reset


def test_rate_limit_remaining_comes_from_the_last_answer(client, fake):
    fake.on("GET", "/user", Answer(json=rest_user(1), headers={"X-RateLimit-Remaining": "4321"}))

    client.viewer()

    assert client.rate_limit_remaining == 4321


def test_a_5xx_raises_github_unavailable(client, fake):
    fake.on("POST", "/graphql", Answer(status=502, body=b"<html>Bad gateway</html>"))

    error = raised(read_members, client)

    assert isinstance(error, GitHubUnavailable)
    assert error.transient
    assert "HTTP 502" in str(error)


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectionError("connection reset"), requests.ConnectTimeout("connect"), requests.ReadTimeout("read")],
)
def test_connection_failures_and_timeouts_raise_github_unavailable(client, fake, failure):
    fake.on("POST", "/graphql", failure)

    error = raised(read_members, client)

    assert isinstance(error, GitHubUnavailable)
    assert error.__cause__ is None


def test_a_graphql_error_of_an_unknown_kind_is_a_github_error(client, fake):
    fake.on("POST", "/graphql", Answer(json={"data": None, "errors": [graphql_error("<b>WEIRD</b>", "What?")]}))

    error = raised(read_members, client)

    assert type(error) is GitHubError
    assert "<b>" not in str(error)


def test_a_graphql_timeout_message_is_transient(client, fake):
    message = "Something went wrong while executing your query. This may be the result of a timeout."
    fake.on("POST", "/graphql", Answer(json={"data": None, "errors": [{"message": message}]}))

    assert isinstance(raised(read_members, client), GitHubUnavailable)


# Requests


def test_every_request_carries_the_token_a_timeout_and_the_api_version(client, fake):
    fake.on("GET", "/user", Answer(json=rest_user(1)))
    fake.on("POST", "/graphql", Answer(json=members_page(edge(1))))

    client.viewer()
    read_members(client)

    for request, options in fake.sent:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
        connect_timeout, read_timeout = options["timeout"]
        assert connect_timeout > 0
        assert read_timeout > 0


def test_base_urls_come_from_settings(settings, fake):
    settings.GITHUB_API_URL = "https://ghe.example/api/v3"
    settings.GITHUB_GRAPHQL_URL = "https://ghe.example/api/graphql"
    client = GitHubClient(TOKEN)
    client.session.mount("https://", fake)
    fake.on("GET", "/api/v3/user", Answer(json=rest_user(1)))
    fake.on("POST", "/api/graphql", Answer(json=members_page(edge(1))))

    client.viewer()
    read_members(client)

    assert [request.url.split("?")[0] for request, _ in fake.sent] == [
        "https://ghe.example/api/v3/user",
        "https://ghe.example/api/graphql",
    ]


def test_api_calls_counts_every_request(client, fake):
    fake.on("POST", "/graphql", Answer(json=members_page(edge(1), next_cursor="c1")), Answer(json=members_page()))

    read_members(client)

    assert client.api_calls == 2


# Retries, against a real local HTTP server


class FlakyServer:
    """Answers each request with the next status of ``statuses`` (the last one again and again)."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.hits += 1
                status = server.statuses.pop(0) if len(server.statuses) > 1 else server.statuses[0]
                body = json.dumps(members_page(edge(1)) if status == 200 else {"message": "oops"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def flaky_server():
    servers = []

    def start(*statuses):
        servers.append(FlakyServer(statuses))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_5xx_answers_are_retried_and_every_attempt_counted(flaky_server):
    server = flaky_server(502, 503, 200)
    client = GitHubClient(TOKEN, api_url=server.url, graphql_url=f"{server.url}/graphql", backoff_factor=0)

    [page] = read_members(client)

    assert page.members[0].github_id == 1
    assert server.hits == 3
    assert client.api_calls == 3


def test_5xx_answers_after_the_last_retry_raise_github_unavailable(flaky_server):
    server = flaky_server(500)
    client = GitHubClient(TOKEN, api_url=server.url, graphql_url=f"{server.url}/graphql", retries=2, backoff_factor=0)

    error = raised(read_members, client)

    assert isinstance(error, GitHubUnavailable)
    assert server.hits == 3
    assert client.api_calls == 3


def test_a_refused_connection_is_retried_then_raises_github_unavailable(flaky_server):
    server = flaky_server(200)
    server.close()
    client = GitHubClient(TOKEN, api_url=server.url, graphql_url=f"{server.url}/graphql", retries=2, backoff_factor=0)

    error = raised(read_members, client)

    assert isinstance(error, GitHubUnavailable)
    assert client.api_calls == 3


def test_the_token_exchange_is_not_sent_twice_once_github_has_it(flaky_server):
    server = flaky_server(502, 200)

    error = raised(exchange_code, "code", redirect_uri="https://app.example/callback", web_url=server.url)

    assert isinstance(error, GitHubUnavailable)
    assert server.hits == 1


# OAuth


class FakeTokenEndpoint(FakeGitHub):
    def __init__(self, *answers):
        super().__init__()
        self.on("POST", "/login/oauth/access_token", *answers)


def exchange(endpoint, **kwargs):
    session = requests.Session()
    session.mount("https://", endpoint)
    return exchange_code(
        "the-code",
        redirect_uri="https://app.example/callback",
        web_url=WEB,
        client_id="client-id",
        client_secret="client-secret",
        session=session,
        **kwargs,
    )


def test_authorize_url_asks_for_read_org_with_state(settings):
    settings.GITHUB_WEB_URL = WEB
    settings.GITHUB_CLIENT_ID = "client-id"

    url = authorize_url(state="s3cr3t-state", redirect_uri="https://app.example/callback")

    assert url.startswith(f"{WEB}/login/oauth/authorize?")
    assert parse_qs(urlsplit(url).query) == {
        "client_id": ["client-id"],
        "redirect_uri": ["https://app.example/callback"],
        "scope": ["read:org"],
        "state": ["s3cr3t-state"],
    }


def test_exchange_code_returns_the_token_and_granted_scopes():
    endpoint = FakeTokenEndpoint(Answer(json={"access_token": TOKEN, "token_type": "bearer", "scope": "read:org,gist"}))

    token = exchange(endpoint)

    assert (token.access_token, token.token_type, token.scopes) == (TOKEN, "bearer", ["read:org", "gist"])
    [(request, options)] = endpoint.sent
    assert request.headers["Accept"] == "application/json"
    assert parse_qs(request.body) == {
        "client_id": ["client-id"],
        "client_secret": ["client-secret"],
        "code": ["the-code"],
        "redirect_uri": ["https://app.example/callback"],
    }
    assert options["timeout"]


def test_exchange_code_raises_oauth_error_on_a_bad_code():
    endpoint = FakeTokenEndpoint(
        Answer(
            json={
                "error": "bad_verification_code",
                "error_description": "The code passed is incorrect or expired.",
                "error_uri": "/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/",
            }
        )
    )

    error = raised(exchange, endpoint)

    assert isinstance(error, OAuthError)
    assert error.code == "bad_verification_code"
    assert "Connect GitHub again" in str(error)


def test_an_oauth_error_code_from_github_is_not_echoed_unchecked():
    error = raised(exchange, FakeTokenEndpoint(Answer(json={"error": "<script>alert(1)</script>"})))

    assert isinstance(error, OAuthError)
    assert error.code == "unknown_error"


def test_exchange_code_raises_scope_missing_when_read_org_was_not_granted():
    endpoint = FakeTokenEndpoint(Answer(json={"access_token": TOKEN, "token_type": "bearer", "scope": "repo,gist"}))

    error = raised(exchange, endpoint)

    assert isinstance(error, ScopeMissing)
    assert error.scope == "read:org"
    assert TOKEN not in str(error)


@pytest.mark.parametrize("scope", ["admin:org", "write:org", "user,admin:org"])
def test_admin_org_and_write_org_imply_read_org(scope):
    endpoint = FakeTokenEndpoint(Answer(json={"access_token": TOKEN, "token_type": "bearer", "scope": scope}))

    assert exchange(endpoint).access_token == TOKEN


def test_a_token_answer_without_a_token_is_malformed():
    error = raised(exchange, FakeTokenEndpoint(Answer(json={"token_type": "bearer", "scope": "read:org"})))

    assert isinstance(error, MalformedResponse)


def test_a_5xx_from_the_token_endpoint_is_transient():
    error = raised(exchange, FakeTokenEndpoint(Answer(status=503, body=b"")))

    assert isinstance(error, GitHubUnavailable)


# The token stays secret


def test_the_token_is_never_in_a_repr(client):
    token = OAuthToken(access_token=TOKEN, token_type="bearer", scopes=["read:org"])

    assert TOKEN not in repr(token)
    assert TOKEN not in str(token)
    assert TOKEN not in repr(client)


@pytest.mark.parametrize(
    "answer",
    [
        Answer(status=401, json={"message": "Bad credentials"}),
        Answer(status=403, headers={"X-GitHub-SSO": f"required; url={SSO_URL}"}),
        Answer(status=403, json={"message": RESTRICTED}),
        Answer(status=403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}),
        Answer(status=500, json={"message": TOKEN}),
        Answer(json={"errors": [graphql_error("NOT_FOUND", TOKEN, ["organization"])]}),
        Answer(json={"errors": [graphql_error(TOKEN, TOKEN)]}),
        Answer(body=TOKEN.encode()),
        Answer(json=members_page(edge(1)), headers={"X-OAuth-Scopes": TOKEN}),
        requests.ConnectionError(TOKEN),
    ],
)
def test_the_token_is_never_in_an_error_or_its_traceback(client, fake, answer):
    fake.on("POST", "/graphql", answer)

    error = raised(read_members, client)

    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)
    assert TOKEN not in "".join(traceback.format_exception(error))


def test_a_token_answer_that_does_not_validate_leaks_no_token_in_the_traceback():
    endpoint = FakeTokenEndpoint(Answer(json={"access_token": TOKEN, "token_type": 7, "scope": "read:org"}))

    error = raised(exchange, endpoint)

    assert isinstance(error, MalformedResponse)
    assert TOKEN not in "".join(traceback.format_exception(error))


# The exceptions themselves


@pytest.mark.parametrize(
    "error",
    [
        BadCredentials(),
        SSORequired(SSO_URL),
        AccessRestricted("acme"),
        OrganizationNotFound("acme"),
        ScopeMissing("read:org"),
        RateLimited(datetime(2030, 1, 1, 14, 5, tzinfo=UTC)),
        GitHubUnavailable("HTTP 502"),
        MalformedResponse("the member page: edges: list_type"),
        OAuthError("bad_verification_code"),
    ],
)
def test_errors_survive_pickling_with_their_message_and_attributes(error):
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)

    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_only_rate_limits_and_outages_are_transient():
    transient = {
        type(error).__name__
        for error in [
            BadCredentials(),
            SSORequired(SSO_URL),
            AccessRestricted(),
            OrganizationNotFound("acme"),
            ScopeMissing(),
            RateLimited(datetime.now(UTC)),
            GitHubUnavailable(),
            MalformedResponse("x"),
            OAuthError("x"),
        ]
        if error.transient
    }

    assert transient == {"RateLimited", "GitHubUnavailable"}


def test_the_rate_limit_message_tells_the_time_in_utc():
    reset = datetime(2030, 1, 1, 16, 5, tzinfo=UTC).astimezone(UTC)

    assert str(RateLimited(reset)).startswith("GitHub rate limit reached; waiting until 16:05 UTC")


def test_a_malformed_sso_url_falls_back_to_the_organizations_sso_page():
    from integrations.github.error_mapping import sso_url

    assert sso_url("required; url=http://[", "acme", web_url="https://github.com") == "https://github.com/orgs/acme/sso"


def test_a_netrc_entry_never_replaces_the_token(tmp_path, monkeypatch):
    from integrations.github.transport import new_session

    (tmp_path / ".netrc").write_text("machine api.github.com login someone password other-secret\n")
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    session = new_session(retries=0, backoff_factor=0, resend=False)
    session.headers["Authorization"] = "Bearer the-token"
    prepared = session.prepare_request(requests.Request("GET", "https://api.github.com/user"))
    assert prepared.headers["Authorization"] == "Bearer the-token"
