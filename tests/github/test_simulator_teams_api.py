"""The simulator's teams over GraphQL and REST: paging, membership kinds, who sees secret teams, bodies
GitHub's descriptions allow, and third-party clients (PyGithub, githubkit) reading them."""

import pytest
from github import Auth, Github
from githubkit import GitHub
from graphql import execute, parse, validate
from jsonschema import Draft202012Validator, FormatChecker

from tests.github.helpers import get, graphql
from tests.github.test_simulator_app import mint

TEAMS_QUERY = """
query($login: String!, $first: Int!, $after: String, $membersFirst: Int!) {
  organization(login: $login) {
    teams(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        id databaseId slug name privacy
        parentTeam { databaseId slug }
        members(membership: IMMEDIATE, first: $membersFirst) {
          totalCount
          pageInfo { hasNextPage endCursor }
          edges { role node { databaseId login } }
        }
      }
    }
  }
}
"""
TEAM_MEMBERS_QUERY = """
query($login: String!, $slug: String!, $membership: TeamMembershipType!, $first: Int!, $after: String) {
  organization(login: $login) {
    team(slug: $slug) {
      members(membership: $membership, first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { role node { databaseId login } }
      }
    }
  }
}
"""


def teams_page(github, token, first=100, after=None, members_first=100):
    response = graphql(github, token, TEAMS_QUERY, login="acme", first=first, after=after, membersFirst=members_first)
    assert "errors" not in response.json(), response.text
    return response.json()["data"]["organization"]["teams"]


def all_team_members(github, token, slug, membership, first):
    edges, after = [], None
    while True:
        variables = {"login": "acme", "slug": slug, "membership": membership, "first": first, "after": after}
        answer = graphql(github, token, TEAM_MEMBERS_QUERY, **variables).json()
        connection = answer["data"]["organization"]["team"]["members"]
        edges += connection["edges"]
        if not connection["pageInfo"]["hasNextPage"]:
            return edges, connection["totalCount"]
        after = connection["pageInfo"]["endCursor"]


def test_the_teams_query_validates_against_githubs_schema(github_graphql_schema):
    assert validate(github_graphql_schema, parse(TEAMS_QUERY)) == []
    assert validate(github_graphql_schema, parse(TEAM_MEMBERS_QUERY)) == []


def test_teams_are_paged_in_slug_order_with_their_parents_and_immediate_members(github, github_token):
    org = github.org("acme")
    nodes, after = [], None
    while True:
        connection = teams_page(github, github_token, first=7, after=after)
        nodes += connection["nodes"]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    assert connection["totalCount"] == len(nodes) == 20
    assert [node["slug"] for node in nodes] == [team.slug for team in org.teams]
    for node, team in zip(nodes, org.teams, strict=True):
        parent = org.teams.parent(team)
        assert node["parentTeam"] == (None if parent is None else {"databaseId": parent.id, "slug": parent.slug})
        assert node["privacy"] == ("SECRET" if team.privacy == "secret" else "VISIBLE")
        assert [(edge["node"]["databaseId"], edge["role"]) for edge in node["members"]["edges"]] == [
            (org.member(index).database_id, role.upper()) for index, role in team.members.items()
        ]


def test_a_teams_members_page_on_their_own_cursor_and_all_counts_its_child_teams(github, github_token):
    org = github.org("acme")
    root = next(team for team in org.teams if org.teams.children(team))
    below = {index for child in org.teams.descendants(root) for index in child.members}

    immediate, immediate_count = all_team_members(github, github_token, root.slug, "IMMEDIATE", 2)
    child_team, _ = all_team_members(github, github_token, root.slug, "CHILD_TEAM", 3)
    everyone, count = all_team_members(github, github_token, root.slug, "ALL", 5)

    assert [edge["node"]["databaseId"] for edge in immediate] == [org.member(i).database_id for i in root.members]
    assert immediate_count == len(root.members)
    assert {edge["node"]["databaseId"] for edge in child_team} == {
        org.member(index).database_id for index in below - set(root.members)
    }
    assert {edge["role"] for edge in child_team} <= {"MEMBER"}
    assert count == len(everyone) == len(below | set(root.members))


def test_a_secret_team_shows_to_owners_its_members_and_the_app_only(github, github_token):
    org = github.org("acme")
    github.create_team("acme", "Hidden")  # secret, GitHub's default, and octocat not in it
    secret = [team for team in org.teams if team.privacy == "secret"]
    hidden = [team for team in secret if 0 not in team.members]
    assert len(hidden) < len(secret)  # octocat is in the first generated secret team

    def slugs(token):
        return {node["slug"] for node in teams_page(github, token)["nodes"]}

    assert slugs(github_token) == {team.slug for team in org.teams}
    org.set_viewer_role("member")
    assert slugs(github_token) == {team.slug for team in org.teams} - {team.slug for team in hidden}
    assert get(github, f"/orgs/acme/teams/{hidden[0].slug}", github_token).status_code == 404
    installation = github.install_app("acme")
    app_token = mint(github, installation.id).json()["token"]
    assert slugs(app_token) == {team.slug for team in org.teams}
    org.remove_viewer()
    assert slugs(github_token) == set()


def test_rest_lists_teams_and_a_teams_members_paged_with_link(github, github_token):
    org = github.org("acme")
    first = get(github, "/orgs/acme/teams?per_page=8", github_token)
    team = next(team for team in org.teams if org.teams.children(team))
    members = get(github, f"/orgs/acme/teams/{team.slug}/members?per_page=100", github_token).json()
    maintainers = get(github, f"/orgs/acme/teams/{team.slug}/members?role=maintainer", github_token).json()
    children = get(github, f"/orgs/acme/teams/{team.slug}/teams", github_token).json()

    assert [item["slug"] for item in first.json()] == [team.slug for team in org.teams][:8]
    assert f'/organizations/{org.id}/teams?per_page=8&page=2>; rel="next"' in first.headers["Link"]
    everyone = org.teams.memberships(team, "ALL")
    assert [(item["id"], item["role"], item["inherited"]) for item in members] == [
        (org.member(index).database_id, role, index not in team.members) for index, role in everyone.items()
    ]
    assert {item["role"] for item in maintainers} == {"maintainer"}
    assert [item["slug"] for item in children] == [child.slug for child in org.teams.children(team)]
    assert all(item["parent"]["id"] == team.id for item in children)


def test_rest_team_membership_as_githubs_description_says(github, github_token):
    org = github.org("acme")
    root = next(team for team in org.teams if org.teams.children(team))
    child = org.teams.children(root)[0]
    plain = next(index for index, role in child.members.items() if org.role_of(index) == "MEMBER")
    login = org.member(plain).login

    direct = get(github, f"/orgs/acme/teams/{child.slug}/memberships/{login}", github_token).json()
    inherited = get(github, f"/orgs/acme/teams/{root.slug}/memberships/{login}", github_token)
    octocats = next(team for team in org.teams if 0 in team.members and team.privacy == "closed")
    octocats.members[0] = "member"
    owner = get(github, f"/orgs/acme/teams/{octocats.slug}/memberships/octocat", github_token).json()
    stranger = get(github, f"/orgs/acme/teams/{root.slug}/memberships/nobody", github_token)

    assert (direct["state"], direct["role"]) == ("active", child.members[plain])
    if plain not in root.members:
        assert inherited.json()["role"] == "member"
    assert owner["role"] == "maintainer"  # "The role for organization owners is set to maintainer."
    assert stranger.status_code == 404


def rest_cases(github):
    org = github.org("acme")
    team = next(team for team in org.teams if org.teams.children(team))
    login = org.member(next(iter(team.members))).login
    return [
        ("/orgs/{org}/teams", "/orgs/acme/teams?per_page=100"),
        ("/orgs/{org}/teams/{team_slug}", f"/orgs/acme/teams/{team.slug}"),
        ("/orgs/{org}/teams/{team_slug}", f"/orgs/acme/teams/{org.teams.children(team)[0].slug}"),
        ("/orgs/{org}/teams/{team_slug}", f"/organizations/{org.id}/team/{team.id}"),
        ("/orgs/{org}/teams/{team_slug}/members", f"/orgs/acme/teams/{team.slug}/members"),
        ("/orgs/{org}/teams/{team_slug}/teams", f"/orgs/acme/teams/{team.slug}/teams"),
        ("/orgs/{org}/teams/{team_slug}/memberships/{username}", f"/orgs/acme/teams/{team.slug}/memberships/{login}"),
    ]


@pytest.mark.parametrize("plan", ["api.github.com", "ghes"])
def test_team_bodies_validate_against_githubs_response_schemas(github, github_token, github_rest_schema, plan):
    prefix = "/api/v3" if plan == "ghes" else ""
    for operation, path in rest_cases(github):
        response = get(github, prefix + path, github_token)
        assert response.status_code == 200, path
        schema = github_rest_schema(operation, plan=plan)
        Draft202012Validator(schema, format_checker=FormatChecker()).validate(response.json())


def test_the_teams_answer_is_data_githubs_schema_allows(github, github_token, github_graphql_schema):
    variables = {"login": "acme", "first": 100, "membersFirst": 100}
    data = {"organization": {"teams": teams_page(github, github_token)}}

    result = execute(
        github_graphql_schema,
        parse(TEAMS_QUERY),
        root_value=data,
        variable_values=variables,
        field_resolver=lambda source, info, **_: source.get(info.path.key),
    )

    assert result.errors is None
    assert result.data == data


@pytest.mark.parametrize("prefix", ["", "/api/v3"], ids=["github.com", "enterprise server"])
def test_pygithub_and_githubkit_list_the_teams_and_a_teams_members(github, github_token, prefix):
    org = github.org("acme")
    team = next(team for team in org.teams if org.teams.children(team))
    expected = [org.member(index).login for index in org.teams.memberships(team, "ALL")]
    pygithub = Github(auth=Auth.Token(github_token), base_url=f"{github.url}{prefix}", retry=None, per_page=5)
    try:
        organization = pygithub.get_organization("acme")
        py_teams = [(found.id, found.slug) for found in organization.get_teams()]
        py_team = organization.get_team_by_slug(team.slug)
        py_members = [user.login for user in py_team.get_members()]
        py_parent = py_team.parent and py_team.parent.id
    finally:
        pygithub.close()
    with GitHub(github_token, base_url=f"{github.url}{prefix}") as kit:
        kit_teams = [found.slug for found in kit.rest.paginate(kit.rest.teams.list, org="acme", per_page=5)]
        kit_members = [
            user.login
            for user in kit.rest.paginate(kit.rest.teams.list_members_in_org, org="acme", team_slug=team.slug)
        ]
        kit_team = kit.rest.teams.get_by_name("acme", team.slug).parsed_data

    assert py_teams == [(found.id, found.slug) for found in org.teams]
    assert kit_teams == [found.slug for found in org.teams]
    assert py_members == kit_members == expected
    assert py_parent == (None if team.parent_id is None else team.parent_id)
    assert (kit_team.id, kit_team.members_count) == (team.id, len(expected))
