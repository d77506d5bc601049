"""githubkit, a client nobody here wrote, drives the simulator through every call the product makes and
parses each answer with its models generated from GitHub's OpenAPI description: on github.com's URL
layout and on GitHub Enterprise Server's."""

import pytest
from githubkit import GitHub

from tests.github.helpers import MEMBERS_QUERY


@pytest.fixture(params=["", "/api/v3"], ids=["github.com", "enterprise server"])
def kit(request, github, github_token):
    with GitHub(github_token, base_url=f"{github.url}{request.param}") as client:
        yield client


def test_githubkit_reads_the_viewer_and_its_organizations(github, kit):
    user = kit.rest.users.get_authenticated().parsed_data
    orgs = kit.rest.orgs.list_for_authenticated_user().parsed_data
    organization = kit.rest.orgs.get("acme").parsed_data

    assert (user.login, user.id) == ("octocat", 1)
    assert [org.login for org in orgs] == ["acme"]
    assert (organization.id, organization.name) == (github.org("acme").id, "Acme")


def test_githubkit_follows_every_members_page(github, kit):
    logins = [user.login for user in kit.rest.paginate(kit.rest.orgs.list_members, org="acme", per_page=100)]

    assert logins == [member.login for member in github.org("acme").members]
    assert github.requests[-1][1].startswith(f"{kit.config.base_url.path.rstrip('/')}/organizations/")


def test_githubkit_reads_memberships_users_and_the_rate_limit(github, kit):
    member = github.org("acme").members[9]

    membership = kit.rest.orgs.get_membership_for_user("acme", member.login).parsed_data
    own = kit.rest.orgs.get_membership_for_authenticated_user("acme").parsed_data
    user = kit.rest.users.get_by_username(member.login).parsed_data
    rate = kit.rest.rate_limit.get().parsed_data

    assert (membership.state, membership.role, membership.user.id) == (
        "active",
        member.role.lower(),
        member.database_id,
    )
    assert (own.state, own.role) == ("active", "admin")
    assert (user.login, user.id) == (member.login, member.database_id)
    assert rate.resources.core.used == 3
    assert rate.resources.graphql.remaining == 5000


def test_githubkit_outside_the_organization_lists_the_public_members_with_200(github, kit):
    org = github.org("acme")
    member = org.members[4]
    org.remove_viewer()
    public = [member.login for member in org.members if member.public]

    listed = [user.login for user in kit.rest.paginate(kit.rest.orgs.list_public_members, org="acme", per_page=30)]
    members = kit.rest.orgs.list_members("acme", per_page=100)
    by_id = kit.rest.users.get_by_id(member.database_id).parsed_data

    assert members.status_code == 200
    assert listed == [user.login for user in members.parsed_data] == public
    assert (by_id.login, by_id.id) == (member.login, member.database_id)


def test_githubkit_runs_the_products_members_query(github, kit):
    answers, after = [], None
    while True:
        data = kit.graphql(MEMBERS_QUERY, {"login": "acme", "first": 100, "after": after})
        connection = data["organization"]["membersWithRole"]
        answers += connection["edges"]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    assert [edge["node"]["databaseId"] for edge in answers] == [
        member.database_id for member in github.org("acme").members
    ]
    assert data["organization"]["viewerIsAMember"] is True
    assert data["rateLimit"]["remaining"] == 4997
    graphql_paths = {target for method, target in github.requests if method == "POST"}
    assert graphql_paths == {"/api/graphql" if kit.config.base_url.path.startswith("/api/v3") else "/graphql"}
