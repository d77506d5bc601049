"""What a member sync changes in the stored members: created, updated, renamed, deactivated and
back; GitHub's text within bounds; and the same few SQL statements whatever the organization's size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.github.schemas import OrganizationMember
from integrations.member_sync.member_writes import stage_members
from integrations.member_sync.sync import ReadSummary, apply_members
from integrations.models import GitHubIntegration, GitHubMember, MemberSyncRun, StagedMember
from teams.models import Team
from tests.syncing import PagesClient, member, stored_members, sync

# On PostgreSQL too (.ci/run): member_writes.py's hand-written SQL, one form per engine.
pytestmark = pytest.mark.postgres


@pytest.fixture
def org(github):
    """The simulator's organization acme, which `integration` reads."""
    return github.org("acme")


def member_writes(queries):
    table = GitHubMember._meta.db_table
    return [
        q["sql"] for q in queries if table in q["sql"] and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))
    ]


def test_a_member_github_gives_no_role_is_kept_with_an_unknown_role_and_others_still_leave(
    integration, github_client, github, org
):
    sync(integration, client=github_client)
    nameless = org.members[10]
    left = org.remove_members(2)
    github.inject("null_roles", times=None, logins=[nameless.login])

    result = sync(integration, client=github_client)

    stored = stored_members(integration)
    assert (result.deactivated, result.skipped, result.held) == (2, 0, 0)
    assert (stored[nameless.database_id]["role"], stored[nameless.database_id]["is_active"]) == ("unknown", True)
    assert not any(stored[member.database_id]["is_active"] for member in left)


def test_it_imports_every_member(integration, github_client, org):
    result = sync(integration, client=github_client)

    assert (result.created, result.updated, result.deactivated, result.unchanged, result.total) == (250, 0, 0, 0, 250)
    stored = stored_members(integration)
    assert len(stored) == 250
    for expected in org.members:
        row = stored[expected.database_id]
        assert (row["login"], row["node_id"], row["role"]) == (expected.login, expected.node_id, expected.role.lower())
        assert row["is_active"]


def test_an_unchanged_resync_writes_no_member_rows(integration, github_client):
    sync(integration, client=github_client)
    with CaptureQueriesContext(connection) as queries:
        result = sync(integration, client=github_client)

    assert (result.created, result.updated, result.deactivated, result.unchanged) == (0, 0, 0, 250)
    assert member_writes(queries.captured_queries) == []


def test_it_updates_changed_members_and_counts_the_rest_unchanged(integration, github_client, org):
    sync(integration, client=github_client)
    org.rename_members(3)
    org.change_roles(2)
    org.update_profiles(4)

    result = sync(integration, client=github_client)

    assert result.updated == 9
    assert result.unchanged == 241
    stored = stored_members(integration)
    for expected in org.members:
        row = stored[expected.database_id]
        assert (row["login"], row["name"] or None, row["role"]) == (
            expected.login,
            expected.name or None,
            expected.role.lower(),
        )


def test_a_renamed_login_keeps_its_member_row(integration, github_client, org):
    sync(integration, client=github_client)
    renamed = org.members[0]
    before = stored_members(integration)[renamed.database_id]
    org.rename_member(renamed.login, "renamed-login")

    sync(integration, client=github_client)

    after = stored_members(integration)[renamed.database_id]
    assert (after["id"], after["login"]) == (before["id"], "renamed-login")


def test_a_login_reused_by_another_user_after_a_rename(integration, github_client, org):
    sync(integration, client=github_client)
    first, second = org.members[0], org.members[1]
    old_login = first.login
    org.rename_member(first.login, "first-renamed")
    org.rename_member(second.login, old_login)

    result = sync(integration, client=github_client)

    stored = stored_members(integration)
    assert stored[first.database_id]["login"] == "first-renamed"
    assert stored[second.database_id]["login"] == old_login
    assert result.created == 0
    assert GitHubMember.objects.filter(integration=integration).count() == 250


def test_members_who_left_are_marked_inactive_never_deleted(integration, github_client, org):
    sync(integration, client=github_client)
    org.remove_members(5)

    result = sync(integration, client=github_client)

    assert (result.deactivated, result.total) == (5, 245)
    assert GitHubMember.objects.filter(integration=integration).count() == 250
    inactive = GitHubMember.objects.filter(integration=integration, is_active=False)
    assert inactive.count() == 5
    assert all(member.left_at is not None for member in inactive)


def test_new_members_are_created(integration, github_client, org):
    sync(integration, client=github_client)
    org.add_members(7)

    result = sync(integration, client=github_client)

    assert (result.created, result.total) == (7, 257)


def test_a_renamed_organization_is_followed_by_its_id(integration, github_client, org):
    sync(integration, client=github_client)
    org.rename("acme-renamed")

    result = sync(integration, client=github_client)

    assert result.unchanged == 250
    integration.refresh_from_db()
    assert integration.organization_login == "acme-renamed"


def test_members_with_unusable_records_deactivate_nobody(integration, github_client, github, org):
    sync(integration, client=github_client)
    org.remove_members(2)
    github.inject("null_fields", times=None)

    result = sync(integration, client=github_client)

    assert result.skipped > 0
    assert result.deactivated == 0
    assert GitHubMember.objects.filter(integration=integration, is_active=False).count() == 0


def test_a_member_who_returns_is_reactivated(integration):
    sync(integration, client=PagesClient([member(1, "ann"), member(2, "ben")]))
    sync(integration, client=PagesClient([member(1, "ann")]))
    assert GitHubMember.objects.get(github_id=2).left_at is not None

    result = sync(integration, client=PagesClient([member(1, "ann"), member(2, "ben")]))

    returned = GitHubMember.objects.get(github_id=2)
    assert (returned.is_active, returned.left_at, result.updated) == (True, None, 1)


def test_a_member_listed_on_two_pages_counts_once(integration):
    result = sync(integration, client=PagesClient([member(1, "ann"), member(2, "ben")], [member(2, "ben")]))
    assert (result.created, result.total) == (2, 2)


def test_github_text_is_stored_within_the_columns_and_links_only_over_https(integration):
    sync(
        integration,
        client=PagesClient([member(1, "ann", name="x" * 1000, avatar_url="javascript:alert(1)")]),
    )
    stored = GitHubMember.objects.get(github_id=1)
    assert stored.name == "x" * GitHubMember._meta.get_field("name").max_length
    assert stored.avatar_url == ""


def test_a_name_or_email_github_did_not_give_keeps_the_stored_one(integration):
    sync(integration, client=PagesClient([member(1, "ann", name="Ann", email="ann@example.com")]))
    unsaid = OrganizationMember.model_construct(
        github_id=1, node_id="U_1", login="ann", name=None, email=None, avatar_url="", role="member"
    )

    result = sync(integration, client=PagesClient([unsaid]))

    stored = GitHubMember.objects.get(github_id=1)
    assert (stored.name, stored.email, result.unchanged) == ("Ann", "ann@example.com", 1)


def test_an_empty_name_or_email_from_github_empties_the_stored_one(integration):
    sync(integration, client=PagesClient([member(1, "ann", name="Ann", email="ann@example.com")]))

    result = sync(integration, client=PagesClient([member(1, "ann", name="", email="")]))

    stored = GitHubMember.objects.get(github_id=1)
    assert (stored.name, stored.email, result.updated) == ("", "", 1)


def test_a_new_member_without_a_name_from_github_is_stored_with_an_empty_one(integration):
    unsaid = OrganizationMember.model_construct(
        github_id=1, node_id="U_1", login="ann", name=None, email=None, avatar_url="", role="member"
    )
    sync(integration, client=PagesClient([unsaid]))
    assert GitHubMember.objects.values_list("name", "email").get() == ("", "")


def test_rows_a_killed_worker_staged_are_discarded_by_the_next_run(integration):
    dead = MemberSyncRun.objects.create(integration=integration, trigger="manual", status="error")
    stage_members(run_id=dead.pk, members=[{"github_id": 9, "node_id": "U_9", "login": "ghost", "name": None,
                                            "email": None, "avatar_url": "", "role": "member"}])  # fmt: skip

    result = sync(integration, client=PagesClient([member(1, "ann")]))

    assert (result.created, StagedMember.objects.count()) == (1, 0)
    assert not GitHubMember.objects.filter(login="ghost").exists()


def test_applying_takes_the_same_sql_statements_for_100_and_10_000_members(db):
    counts = {}
    for size in (100, 10_000):
        team = Team.objects.create(name=f"Team {size}", slug=f"team-{size}")
        integration = GitHubIntegration.objects.create(team=team, organization_login=f"org-{size}")
        run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status="syncing")
        members = [
            {"github_id": n, "node_id": f"U_{n}", "login": f"user-{n}", "name": "", "email": "", "avatar_url": "",
             "role": "member"}
            for n in range(1, size + 1)
        ]  # fmt: skip
        stage_members(run_id=run.pk, members=members)
        with CaptureQueriesContext(connection) as queries:
            result = apply_members(run=run, read=ReadSummary(skipped=0, organization_login=f"org-{size}"))
        assert result["created"] == size
        counts[size] = len(queries.captured_queries)
    assert counts[100] == counts[10_000]
