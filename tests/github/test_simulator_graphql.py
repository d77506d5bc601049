"""The simulator's GraphQL endpoint over HTTP: the product's members query, paging, public and
concealed members, verified-domain emails, and GitHub's refusals."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from github_simulator.avatars import avatar_url
from tests.github.helpers import MEMBERS_QUERY, all_members, graphql, members_page
from tests.helpers import wait_for


@pytest.mark.parametrize("first", [1, 7, 100])
def test_cursor_paging_gives_every_member_exactly_once(github, github_token, first):
    github.org("acme").remove_members(4)
    edges = all_members(github, github_token, first=first)

    assert [edge["node"]["login"] for edge in edges] == [member.login for member in github.org("acme").members]


def test_the_products_query_is_answered_with_the_simulated_members(github, github_token):
    org = github.org("acme")

    answer = members_page(github, github_token, first=3)

    connection = answer["membersWithRole"]
    assert (answer["id"], answer["databaseId"], answer["login"]) == (org.node_id, org.id, "acme")
    assert answer["viewerIsAMember"] is True
    assert connection["totalCount"] == 250
    assert connection["pageInfo"]["hasNextPage"] is True
    member = org.members[1]
    assert connection["edges"][1] == {
        "role": member.role,
        "node": {
            "id": member.node_id,
            "databaseId": member.database_id,
            "login": member.login,
            "name": member.name,
            "email": member.email,
            "avatarUrl": avatar_url(github.url, member.database_id),
            "organizationVerifiedDomainEmails": [f"{member.login}@acme.example"] if member.verified_email else [],
        },
    }


def test_enterprise_servers_graphql_path_answers_the_same(github, github_token):
    enterprise = all_members(github, github_token, path="/api/graphql")

    assert enterprise == all_members(github, github_token)


def test_about_one_member_in_four_has_a_verified_domain_email(github, github_token):
    edges = all_members(github, github_token)

    emails = [edge["node"]["organizationVerifiedDomainEmails"] for edge in edges]
    assert 40 < sum(1 for found in emails if found) < 90
    assert ["octocat@acme.example"] == emails[0]
    assert all(found == [] or found[0].endswith("@acme.example") for found in emails)


def test_a_removed_viewer_sees_only_public_members(github, github_token):
    org = github.org("acme")
    org.remove_viewer()
    public = [member.login for member in org.members if member.public]

    response = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=100)
    edges = all_members(github, github_token, first=30)

    assert response.status_code == 200
    assert "errors" not in response.json()
    answer = response.json()["data"]["organization"]
    assert answer["viewerIsAMember"] is False
    assert answer["membersWithRole"]["totalCount"] == len(public)
    assert [edge["node"]["login"] for edge in edges] == public
    assert all(edge["node"]["organizationVerifiedDomainEmails"] == [] for edge in edges)


def test_rate_limit_and_viewer_answer_like_githubs(github, github_token):
    answer = graphql(github, github_token, "{ viewer { login databaseId } rateLimit { cost limit remaining used } }")

    data = answer.json()["data"]
    assert data["viewer"] == {"login": "octocat", "databaseId": 1}
    assert data["rateLimit"] == {"cost": 1, "limit": 5000, "remaining": 4999, "used": 1}
    assert answer.headers["X-RateLimit-Resource"] == "graphql"


def test_an_unknown_organization_is_not_found_with_data(github, github_token):
    body = graphql(github, github_token, MEMBERS_QUERY, login="nobody", first=10).json()

    assert body["data"]["organization"] is None
    assert body["errors"][0]["type"] == "NOT_FOUND"
    assert body["errors"][0]["path"] == ["organization"]


@pytest.mark.parametrize(
    ("first", "error_type"),
    [(0, "EXCESSIVE_PAGINATION"), (101, "EXCESSIVE_PAGINATION"), (None, "MISSING_PAGINATION_BOUNDARIES")],
)
def test_a_page_size_outside_1_to_100_is_refused_without_data(github, github_token, first, error_type):
    arguments = "" if first is None else f"(first: {first})"
    document = f'{{ organization(login: "acme") {{ membersWithRole{arguments} {{ totalCount }} }} }}'

    body = graphql(github, github_token, document).json()

    assert "data" not in body
    assert [error["type"] for error in body["errors"]] == [error_type]


def test_members_need_the_read_org_scope(github):
    token = github.issue_token(scopes=("repo",))

    body = graphql(github, token, MEMBERS_QUERY, login="acme", first=10).json()

    assert "data" not in body
    assert body["errors"][0]["type"] == "INSUFFICIENT_SCOPES"
    assert "['read:org']" in body["errors"][0]["message"]


def test_invalid_documents_and_cursors_are_refused(github, github_token):
    invalid = graphql(github, github_token, '{ organization(login: "acme") { nope } }').json()
    cursor = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=10, after="bm9wZQ==").json()

    assert "data" not in invalid
    assert "nope" in invalid["errors"][0]["message"]
    assert cursor["errors"][0]["type"] == "INVALID_CURSOR_ARGUMENTS"


def test_aliases_and_fragments_work_as_on_github(github, github_token):
    document = """
    query { a: organization(login: "acme") { ...Names } b: organization(login: "acme") { login } }
    fragment Names on Organization { membersWithRole(first: 2) { nodes { login } } }
    """

    data = graphql(github, github_token, document).json()["data"]

    assert [node["login"] for node in data["a"]["membersWithRole"]["nodes"]] == [
        member.login for member in github.org("acme").members[:2]
    ]
    assert data["b"] == {"login": "acme"}


def test_a_held_organizations_later_pages_wait_until_released_while_others_are_answered(github, github_token):
    github.add_org("held", size=5)
    github.org("held").hold(after=2)
    first_page = members_page(github, github_token, login="held", first=2)["membersWithRole"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(
            members_page, github, github_token, login="held", first=2, after=first_page["pageInfo"]["endCursor"]
        )
        wait_for(lambda: github.request_count == 2, message="the held page's request to arrive")

        assert members_page(github, github_token, first=3)["login"] == "acme"
        assert not held.done()
        github.org("held").release()
        assert len(held.result(timeout=10)["membersWithRole"]["edges"]) == 2
