"""The GitHub client reading an organization's teams and their immediate members over real HTTP
against the simulator: nesting, a large team continued on its own cursor, roles, the calls it costs,
secret teams by viewer, and records GitHub sends unusable."""

import json
import math

import pytest

from integrations.github.client import TEAM_MEMBERS_FIRST, GitHubClient
from integrations.github.errors import ViewerNotMember
from tests.github.test_simulator_app import mint


def connect(github, token, **options) -> GitHubClient:
    return GitHubClient(
        token, api_url=github.url, graphql_url=f"{github.url}/graphql", web_url=github.url, backoff_factor=0, **options
    )


@pytest.fixture
def octocat(github, github_token):
    """A client of octocat, an owner of every simulated organization."""
    return connect(github, github_token)


def read(client, login, **options):
    pages = list(client.iter_team_pages(login, **options))
    teams = [team for page in pages for team in page.teams]
    memberships = [membership for page in pages for membership in page.memberships]
    return pages, teams, memberships


def immediate(org, team) -> set[tuple[int, int, str]]:
    """The team's own members as GitHub has them: (team id, member id, role)."""
    own = org.teams.memberships(team, "IMMEDIATE")
    return {(team.id, org.member(index).database_id, role) for index, role in own.items()}


def graphql_calls(github, start=0) -> int:
    return sum(1 for method, target in github.requests[start:] if method == "POST" and target.startswith("/graphql"))


def on_answer(client, change):
    """Let ``change(response, query_name)`` alter each answer from GitHub before the client reads it
    (a requests response hook: it runs after the session's retries)."""

    def hook(response, **kwargs):
        query = json.loads(response.request.body)["query"]
        name = "teams" if "OrganizationTeams" in query else "team members"
        response._content = response.content
        change(response, name)
        return response

    client.session.hooks["response"].append(hook)


def test_it_reads_sixty_teams_nested_three_deep_with_their_parents_and_immediate_members(github, octocat):
    org = github.add_org("nested-org", 800, teams=60)

    pages, teams, memberships = read(octocat, "nested-org", page_size=25)

    assert [(page.total, page.has_next_page, page.skipped) for page in pages] == [
        (60, True, 0),
        (60, True, 0),
        (60, False, 0),
    ]
    assert [team.slug for team in teams] == [team.slug for team in org.teams]  # GitHub's order, by slug
    simulated = {team.id: team for team in org.teams}
    assert {team.github_id: team.parent_id for team in teams} == {team.id: team.parent_id for team in org.teams}
    assert {(team.github_id, team.node_id, team.name, team.privacy) for team in teams} == {
        (team.id, team.node_id, team.name, team.privacy) for team in org.teams
    }
    parents = {team.github_id: team.parent_id for team in teams}

    def depth(team_id):
        return 1 if parents[team_id] is None else 1 + depth(parents[team_id])

    assert max(depth(team.github_id) for team in teams) == 3
    assert {"closed", "secret"} == {team.privacy for team in teams}
    # Each team's own members only: a child team's members are not fetched again for its parents.
    read_memberships = {(m.team_id, m.github_id, m.role) for m in memberships}
    assert len(read_memberships) == len(memberships)
    assert read_memberships == {row for team in simulated.values() for row in immediate(org, team)}
    logins = {member.database_id: member.login for member in org.members}
    assert all(logins[membership.github_id] == membership.login for membership in memberships)


def test_a_team_larger_than_its_page_continues_on_its_own_cursor(github, octocat):
    org = github.org("acme")
    logins = [member.login for member in org.members[1:141]]
    team, _ = github.create_team("acme", "Everyone", privacy="closed", maintainers=logins[:3], members=logins[3:])
    before = github.request_count

    _, teams, memberships = read(octocat, "acme")

    ours = [membership for membership in memberships if membership.team_id == team.id]
    assert [membership.github_id for membership in ours] == [
        org.member(index).database_id for index in org.teams.memberships(team)
    ]
    assert {(m.team_id, m.github_id, m.role) for m in ours} == immediate(org, team)
    assert len(ours) == 140
    # One page of teams carries the first TEAM_MEMBERS_FIRST; the other 115 come 100 a page.
    continued = [target for _, target in github.requests[before:] if target.startswith("/graphql")]
    assert len(continued) == 1 + math.ceil((140 - TEAM_MEMBERS_FIRST) / 100)
    assert sum(team.github_id == ours[0].team_id for team in teams) == 1


def test_roles_are_maintainer_or_member_as_github_says(github, octocat):
    org = github.org("acme")
    team, _ = github.create_team(
        "acme", "Roles", privacy="closed", maintainers=(org.members[10].login,), members=(org.members[11].login,)
    )
    github.set_team_membership("acme", "roles", org.members[12].login, "maintainer")

    _, _, memberships = read(octocat, "acme")

    assert {(m.login, m.role) for m in memberships if m.team_id == team.id} == {
        (org.members[10].login, "maintainer"),
        (org.members[11].login, "member"),
        (org.members[12].login, "maintainer"),
    }


@pytest.mark.parametrize(("page_size", "members_first"), [(100, TEAM_MEMBERS_FIRST), (8, 5)])
def test_the_calls_are_one_per_page_of_teams_and_one_per_further_page_of_a_large_team(
    github, octocat, page_size, members_first
):
    org = github.org("acme")
    teams = list(org.teams)
    sizes = [len(org.teams.memberships(team)) for team in teams]
    expected = math.ceil(len(teams) / page_size) + sum(
        math.ceil((size - members_first) / 100) for size in sizes if size > members_first
    )

    _, read_teams, _ = read(octocat, "acme", page_size=page_size, members_first=members_first)

    assert len(read_teams) == len(teams) == 20
    assert octocat.api_calls == graphql_calls(github) == expected


def test_a_secret_team_is_hidden_from_a_plain_member_and_seen_by_an_owner_and_the_app(github, github_token):
    org = github.org("acme")
    hidden, _ = github.create_team("acme", "Hidden")  # secret, GitHub's default, octocat not in it
    everything = {team.slug for team in org.teams}

    assert {team.slug for team in read(connect(github, github_token), "acme")[1]} == everything
    org.set_viewer_role("member")
    as_member = {team.slug for team in read(connect(github, github_token), "acme")[1]}
    assert "hidden" not in as_member
    assert as_member == {team.slug for team in org.teams if team.privacy == "closed" or 0 in team.members}
    app_token = mint(github, github.install_app("acme").id).json()["token"]
    app_teams = read(connect(github, app_token, installation=True), "acme")[1]
    assert {team.slug for team in app_teams} == everything
    assert next(team for team in app_teams if team.slug == "hidden").privacy == "secret"
    assert hidden.id in {team.github_id for team in app_teams}


def test_a_token_outside_the_organization_is_refused_not_shown_no_teams(github, github_token):
    github.org("acme").remove_viewer()

    with pytest.raises(ViewerNotMember):
        read(connect(github, github_token), "acme")


def test_unusable_team_and_membership_records_are_skipped_and_counted(github, octocat):
    org = github.org("acme")
    expected_teams = list(org.teams)

    def damage(response, name):
        body = json.loads(response.content)
        edges = body["data"]["organization"]["teams"]["edges"]
        edges[0]["node"]["databaseId"] = None  # a team without its id
        edges[1]["node"]["members"]["edges"][0]["node"]["login"] = "-not a login-"
        response._content = json.dumps(body).encode()

    on_answer(octocat, damage)

    pages, teams, memberships = read(octocat, "acme")

    assert pages[0].skipped == 2
    assert [team.slug for team in teams] == [team.slug for team in expected_teams[1:]]
    second = expected_teams[1]
    assert len([m for m in memberships if m.team_id == second.id]) == len(second.members) - 1
    assert not [m for m in memberships if m.team_id == expected_teams[0].id]


def test_an_error_inside_one_teams_record_spoils_that_team_only(github, octocat):
    def spoil(response, name):
        body = json.loads(response.content)
        body["errors"] = [{"message": "Something", "path": ["organization", "teams", "edges", 2, "node", "name"]}]
        response._content = json.dumps(body).encode()

    on_answer(octocat, spoil)

    pages, teams, _ = read(octocat, "acme")

    assert pages[0].skipped == 1
    assert len(teams) == 19


def test_a_team_gone_before_its_members_are_finished_leaves_them_counted_as_skipped(github, octocat):
    org = github.org("acme")
    logins = [member.login for member in org.members[1:131]]
    team, _ = github.create_team("acme", "Doomed", privacy="closed", members=logins)

    def delete_it(response, name):
        if name == "teams":
            github.delete_team("acme", "doomed")

    on_answer(octocat, delete_it)

    pages, teams, memberships = read(octocat, "acme")

    assert team.id in {read_team.github_id for read_team in teams}
    assert len([m for m in memberships if m.team_id == team.id]) == TEAM_MEMBERS_FIRST
    assert pages[0].skipped == 130 - TEAM_MEMBERS_FIRST


def test_a_page_github_gives_up_on_is_asked_again_at_half_the_size(github, octocat):
    sizes = []

    def time_out_once(response, name):
        if name == "teams":
            sizes.append(json.loads(response.request.body)["variables"]["first"])
            if len(sizes) == 1:
                response.status_code = 502  # GitHub's answer past its 10 s limit; not resent as it is

    on_answer(octocat, time_out_once)

    _, teams, _ = read(octocat, "acme")

    assert len(teams) == 20
    assert sizes == [100, 50]
    assert graphql_calls(github) == 2
