"""The simulator's teams: generated nested about three deep, GitHub's rules for slugs, secret teams and
nesting, the control API's changes and the `team` and `membership` deliveries they send."""

import json

import pytest

from github_simulator.organizations import Organizations
from github_simulator.teams import team_slug
from tests.conftest import GITHUB_PLANS, github_webhook_validator
from tests.github.test_simulator_app import control
from tests.github_webhooks import signed


def test_a_generated_tree_is_three_deep_with_secret_roots_and_the_same_every_time():
    import threading

    first = Organizations(threading.RLock()).add("big-org", 800, teams=60)
    again = Organizations(threading.RLock()).add("big-org", 800, teams=60)
    teams = list(first.teams)

    assert len(teams) == 60
    assert [(team.id, team.slug, team.parent_id) for team in teams] == [
        (team.id, team.slug, team.parent_id) for team in again.teams
    ]
    assert max(len(first.teams.ancestors(team)) for team in teams) == 2
    secret = [team for team in teams if team.privacy == "secret"]
    assert secret
    assert all(team.parent_id is None and not first.teams.children(team) for team in secret)
    assert all(team.members for team in teams)
    assert all(role in ("member", "maintainer") for team in teams for role in team.members.values())
    assert "maintainer" in {role for team in teams for index, role in team.members.items() if index}


@pytest.mark.parametrize(
    ("name", "slug"),
    [("My TEam Näme", "my-team-name"), ("Équipe Zoë!", "equipe-zoe"), ("  a -- b  ", "a-b"), ("ops_2", "ops_2")],
)
def test_a_slug_is_made_as_githubs_description_says(name, slug):
    assert team_slug(name) == slug


def test_nesting_follows_githubs_rules(github):
    teams = github.org("acme").teams
    root, _ = github.create_team("acme", "Root", privacy="closed")
    child, _ = github.create_team("acme", "Child", parent="root")
    grandchild, _ = github.create_team("acme", "Grand Child", parent="child")
    secret, _ = github.create_team("acme", "Hush")

    assert (child.privacy, secret.privacy) == ("closed", "secret")  # GitHub's defaults
    with pytest.raises(ValueError, match="unique"):
        github.create_team("acme", "ROOT")
    with pytest.raises(ValueError, match="secret team cannot have child"):
        github.create_team("acme", "Under Hush", parent="hush")
    with pytest.raises(ValueError, match="secret team cannot have a parent"):
        github.create_team("acme", "Nested Hush", parent="root", privacy="secret")
    with pytest.raises(ValueError, match="itself or one of its child"):
        github.edit_team("acme", "root", parent="grand-child")
    with pytest.raises(ValueError, match="child teams cannot be secret"):
        github.edit_team("acme", "child", privacy="secret")

    renamed, _ = github.edit_team("acme", "child", name="Kid")
    assert (renamed.id, renamed.slug, teams.find("child")) == (child.id, "kid", None)
    deleted, _ = github.delete_team("acme", "root")
    assert [team.slug for team in deleted] == ["root", "grand-child", "kid"]  # the team, then the rest by slug
    assert teams.find("grand-child") is None
    assert teams.get(grandchild.id) is None
    assert teams.get(root.id) is None


def test_a_member_who_leaves_the_organization_leaves_its_teams(github):
    org = github.org("acme")
    member = org.members[5]
    team, _ = github.create_team("acme", "Leavers", members=(member.login,), maintainers=(org.members[6].login,))
    github.set_team_membership("acme", "leavers", org.members[7].login, "maintainer")

    github.remove_members("acme", logins=[member.login])

    assert [team.slug for team in org.teams.teams_of(member.index)] == []
    assert org.teams.memberships(team) == {6: "maintainer", 7: "maintainer"}


def test_the_control_api_creates_changes_and_deletes_teams(github):
    org = github.org("acme")
    alice, bob = org.members[3].login, org.members[4].login

    created = control(
        github, "POST", "orgs/acme/teams", name="Control Room", description="d", privacy="closed", maintainers=[alice]
    )
    child = control(github, "POST", "orgs/acme/teams", name="Desk", parent="control-room")
    added = control(github, "POST", "orgs/acme/teams/desk/memberships/" + bob, role="member")
    promoted = control(github, "POST", "orgs/acme/teams/desk/memberships/" + bob, role="maintainer")
    moved = control(github, "POST", "orgs/acme/teams/desk", parent=None, name="Front Desk")
    removed = control(github, "DELETE", "orgs/acme/teams/front-desk/memberships/" + bob)
    listed = control(github, "GET", "orgs/acme/teams").json()
    deleted = control(github, "DELETE", "orgs/acme/teams/control-room")

    assert created.status_code == child.status_code == 201
    assert created.json()["members"] == {alice: "maintainer"}
    assert created.json()["privacy"] == "closed"
    assert (child.json()["parent"], child.json()["privacy"]) == ("control-room", "closed")
    assert added.json()["members"] == {bob: "member"}
    assert promoted.json()["members"] == {bob: "maintainer"}
    assert (moved.json()["slug"], moved.json()["parent"], moved.json()["id"]) == (
        "front-desk",
        None,
        child.json()["id"],
    )
    assert removed.json()["members"] == {}
    assert {"control-room", "front-desk"} <= {team["slug"] for team in listed}
    assert deleted.json()["deleted"] == ["control-room"]
    assert control(github, "POST", "orgs/acme/teams", name="Desk 2", parent="nope").status_code == 404
    assert control(github, "POST", "orgs/acme/teams", name="!!").status_code == 400
    assert control(github, "POST", "orgs/acme/teams/front-desk/memberships/nobody").status_code == 404


def test_team_changes_send_the_team_and_membership_deliveries_githubs_descriptions_give(github, webhook_receiver):
    org = github.org("acme")
    member = org.members[8]
    github.install_app("acme")
    webhook_receiver.wait_for(1)

    guids = github.create_team("acme", "Hooks", privacy="closed")[1]
    guids += github.create_team("acme", "Hook Child", parent="hooks")[1]
    guids += github.edit_team("acme", "hooks", name="Hooked", description="now described")[1]
    guids += github.set_team_membership("acme", "hook-child", member.login)[1]
    assert github.set_team_membership("acme", "hook-child", member.login, "maintainer")[1] == []  # no such event
    guids += github.remove_team_membership("acme", "hook-child", member.login)[1]
    guids += github.delete_team("acme", "hooked")[1]
    arrived = webhook_receiver.wait_for(8)[1:]

    assert [headers["X-GitHub-Delivery"] for headers, _ in arrived] == guids
    payloads = [json.loads(body) for _, body in arrived]
    names = [
        f"{headers['X-GitHub-Event']}-{payload['action']}"
        for (headers, _), payload in zip(arrived, payloads, strict=True)
    ]
    assert names == [
        "team-created",
        "team-created",
        "team-edited",
        "membership-added",
        "membership-removed",
        "team-deleted",
        "team-deleted",
    ]
    for (headers, body), payload, name in zip(arrived, payloads, names, strict=True):
        assert headers["X-Hub-Signature-256"] == signed(body)
        for plan in GITHUB_PLANS:
            github_webhook_validator(name, plan).validate(payload)
    assert payloads[1]["team"]["parent"]["slug"] == "hooks"
    assert payloads[2]["changes"] == {"name": {"from": "Hooks"}, "description": {"from": ""}}
    assert (payloads[3]["scope"], payloads[3]["member"]["id"], payloads[3]["team"]["slug"]) == (
        "team",
        member.database_id,
        "hook-child",
    )
    assert [payload["team"]["slug"] for payload in payloads[5:]] == ["hooked", "hook-child"]
    assert all(payload["team"]["deleted"] for payload in payloads[5:])


def test_no_delivery_without_an_installation(github, webhook_receiver):
    team, guids = github.create_team("acme", "Quiet")

    assert guids == []
    assert github.webhooks.log() == []
    assert team.slug == "quiet"
