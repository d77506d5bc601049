"""What changed: every run records each change it made to a member, one row a change, computed from
the stage as the sync applies it (docs/interfaces.md#what-changed)."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest

from integrations import words
from integrations.member_sync import runs, tasks
from integrations.member_sync.sync import sync_members
from integrations.member_sync.tasks import sync_github_members
from integrations.models import GitHubIntegration, MemberChange, MemberSyncRun
from tests.syncing import PagesClient, member, sync

# On PostgreSQL too (.ci/run): the changes are recorded with hand-written SQL, one form per engine.
pytestmark = pytest.mark.postgres

Kind = MemberChange.Kind


@pytest.fixture
def connected(team):
    return GitHubIntegration.objects.create(team=team, organization_login="acme")


def changes_of(run_id):
    return sorted(
        (change.kind, change.github_id, change.login, change.before, change.after)
        for change in MemberChange.objects.filter(run_id=run_id)
    )


def run_of(integration):
    return integration.member_sync_runs.order_by("-pk").first().pk


def everyone():
    return [member(n, f"user{n}", name=f"User {n}") for n in range(1, 21)]


def test_a_sync_records_each_change_it_made(connected):
    sync(connected, client=PagesClient(everyone()))
    members = everyone()[3:]  # three removed
    members[0] = member(4, "user4-renamed", name="User 4")
    members[1] = member(5, "user5", name="User 5").model_copy(update={"role": "admin"})
    members[2] = member(6, "user6", name="Someone Else")
    members += [member(21, "new21", name="New"), member(22, "new22", name="New")]

    sync(connected, client=PagesClient(members))

    recorded = changes_of(run_of(connected))
    assert len(recorded) == 8
    assert [kind for kind, *_ in recorded].count(Kind.DEACTIVATED) == 3
    assert (Kind.ADDED, 21, "new21", "", "new21") in recorded
    assert (Kind.LOGIN_CHANGED, 4, "user4-renamed", "user4", "user4-renamed") in recorded
    assert (Kind.ROLE_CHANGED, 5, "user5", "member", "admin") in recorded
    [profile] = [change for change in recorded if change[0] == Kind.PROFILE_CHANGED]
    assert (profile[1], '"User 6"' in profile[3], '"Someone Else"' in profile[4]) == (6, True, True)


def test_the_first_import_records_every_member_added(connected):
    sync(connected, client=PagesClient(everyone()))

    assert {kind for kind, *_ in changes_of(run_of(connected))} == {Kind.ADDED}
    assert MemberChange.objects.filter(run_id=run_of(connected)).count() == 20


def test_an_unchanged_resync_records_nothing(connected):
    sync(connected, client=PagesClient(everyone()))
    sync(connected, client=PagesClient(everyone()))

    assert changes_of(run_of(connected)) == []


def test_a_member_back_is_recorded_as_reactivated(connected):
    sync(connected, client=PagesClient(everyone()))
    sync(connected, client=PagesClient(everyone()[1:]))
    sync(connected, client=PagesClient(everyone()))

    assert changes_of(run_of(connected)) == [(Kind.REACTIVATED, 1, "user1", "", "")]


def test_deactivations_held_back_are_recorded_as_held(connected, settings):
    settings.MEMBER_SYNC_HOLD_DEACTIVATIONS_MIN = 2
    sync(connected, client=PagesClient(everyone()))
    sync(connected, client=PagesClient(everyone()[10:]))

    assert changes_of(run_of(connected)) == [(Kind.HELD, n, f"user{n}", "", "") for n in sorted(range(1, 11))]


def run_detail(client, run_id, query=""):
    response = client.get(f"/t/acme/github/members/runs/{run_id}/{query}")
    assert response.status_code == 200
    return response.content.decode()


def change_rows(html):
    table = html.split('id="member-changes"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-kind="([a-z_]+)"><td>[^<]*</td><td class="login">([^<]*)</td>', table)


def test_the_run_detail_lists_its_changes_one_row_each(client, alice, connected):
    sync(connected, client=PagesClient(everyone()))
    members = everyone()[3:]
    members[0] = member(4, "user4-renamed", name="User 4")
    members[2] = member(6, "user6", name="Someone Else")
    sync(connected, client=PagesClient(members))
    client.force_login(alice)

    html = run_detail(client, run_of(connected))

    assert sorted(change_rows(html)) == [
        ("deactivated", "user1"), ("deactivated", "user2"), ("deactivated", "user3"),
        ("login_changed", "user4-renamed"), ("profile_changed", "user6"),
    ]  # fmt: skip
    assert "<td>name: User 6</td><td>name: Someone Else</td>" in html


def test_the_run_detail_filters_its_changes_by_kind(client, alice, connected):
    sync(connected, client=PagesClient(everyone()))
    sync(connected, client=PagesClient([member(4, "user4-renamed", name="User 4"), *everyone()[4:]]))
    client.force_login(alice)

    html = run_detail(client, run_of(connected), "?kind=deactivated")

    assert sorted(change_rows(html)) == [("deactivated", "user1"), ("deactivated", "user2"), ("deactivated", "user3")]
    assert 'href="?kind=login_changed">Renamed (1)</a>' in html


def test_a_run_that_changed_nobody_says_so(client, alice, connected):
    sync(connected, client=PagesClient(everyone()))
    sync(connected, client=PagesClient(everyone()))
    client.force_login(alice)

    html = run_detail(client, run_of(connected))

    assert change_rows(html) == []
    assert "This sync changed no member." in html


def test_a_renamed_members_history_shows_the_old_and_the_new_login(client, alice, connected):
    sync(connected, client=PagesClient(everyone()))
    sync(connected, client=PagesClient([member(1, "user1-renamed", name="User 1"), *everyone()[1:]]))
    client.force_login(alice)

    response = client.get("/t/acme/github/members/1/")

    assert response.status_code == 200
    history = response.content.decode().split('id="member-history"', 1)[1]
    kinds = re.findall(r'<tr data-kind="([a-z_]+)">', history)
    assert kinds == ["login_changed", "added"]  # newest first
    assert "<td>user1</td><td>user1-renamed</td>" in history


def test_a_members_history_is_for_admins(client, bob, connected):
    sync(connected, client=PagesClient(everyone()))
    client.force_login(bob)

    assert client.get("/t/acme/github/members/1/").status_code == 403


def test_a_member_not_of_the_team_has_no_history(client, alice, connected):
    sync(connected, client=PagesClient(everyone()))
    client.force_login(alice)

    assert client.get("/t/acme/github/members/99/").status_code == 404


@pytest.mark.services  # the members page reads its stream's current event id from Redis
def test_the_member_list_links_each_login_to_its_history_for_admins(client, alice, bob, connected):
    sync(connected, client=PagesClient(everyone()))
    client.force_login(alice)
    page = client.get("/t/acme/github/members/")
    assert b'<a href="1/">user1</a>' in page.content
    assert client.get(page.wsgi_request.path + "1/").status_code == 200
    client.force_login(bob)
    assert b'<a href="1/">' not in client.get("/t/acme/github/members/").content


def test_the_changes_export_lists_every_change_oldest_first(client, alice, connected):
    sync(connected, client=PagesClient(everyone()[:2]))
    sync(connected, client=PagesClient([member(1, "user1-renamed", name="User 1")]))
    first, second = connected.member_sync_runs.order_by("pk").values_list("pk", flat=True)
    client.force_login(alice)

    response = client.get("/t/acme/github/members/export/?changes=1")

    assert response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="acme-github-member-changes.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["at", "run", "kind", "github_id", "login", "before", "after"]
    # Sorted on both sides: run ids are text in the file, and "10" sorts before "9".
    assert sorted(row[1:] for row in rows[1:]) == sorted(
        [
            [str(first), "added", "1", "user1", "", "user1"],
            [str(first), "added", "2", "user2", "", "user2"],
            [str(second), "deactivated", "2", "user2", "", ""],
            [str(second), "login_changed", "1", "user1-renamed", "user1", "user1-renamed"],
        ]
    )
    assert all(row[0].startswith(str(datetime.now(UTC).year)) for row in rows[1:])


@pytest.mark.services  # the members page reads its stream's current event id from Redis
def test_the_members_page_sums_up_the_last_runs_changes_in_one_line(client, bob, connected):
    sync(connected, client=PagesClient(everyone()))
    members = everyone()[3:]
    members[0] = member(4, "user4-renamed", name="User 4")
    members[1] = member(5, "user5", name="User 5").model_copy(update={"role": "admin"})
    members += [member(21, "new21", name="New"), member(22, "new22", name="New")]
    run = MemberSyncRun.objects.create(integration=connected, trigger="manual", status="syncing")
    runs.complete_run(run, sync_members(run=run, client=PagesClient(members)))
    client.force_login(bob)  # a plain member reads it too

    html = client.get("/t/acme/github/members/").content.decode()

    summary = re.search(r'<span id="member-changes-summary"[^>]*>(.*?)</span>\s*</p>', html, re.S)
    assert "hidden" not in summary.group(0).split(">", 1)[0]
    assert re.sub(r"<[^>]+>", "", summary.group(1)) == "Changes: +2 · −3 · 1 renamed · 1 role changed"


def test_the_summary_of_changes_names_each_kind_once_in_a_fixed_order():
    counts = {"login_changed": 1, "deactivated": 3, "added": 1, "reactivated": 1, "held": 4, "kept": 2}

    assert words.change_summary(counts) == "+2 · −3 · 4 held · 2 kept · 1 renamed"
    assert words.change_summary({}) == "no changes"


@pytest.mark.services  # the GitHub simulator over HTTP
def test_the_issues_case_on_github_shows_its_eight_changes_on_every_page_and_export(client, alice, integration, github):
    sync_now(integration)
    acme = github.org("acme")
    acme.remove_members(3)
    acme.add_members(2)
    (renamed,) = acme.rename_members(1)
    acme.change_roles(1)
    acme.update_profiles(1)
    run = sync_now(integration)
    client.force_login(alice)

    kinds = sorted(kind for kind, _ in change_rows(run_detail(client, run.pk)))
    assert kinds == [*["added"] * 2, *["deactivated"] * 3, "login_changed", "profile_changed", "role_changed"]
    changes_csv = export(client, "?changes=1")
    assert sorted(row[2] for row in changes_csv[1:] if row[1] == str(run.pk)) == kinds
    history = client.get(f"/t/acme/github/members/{renamed.database_id}/").content.decode()
    [(before, after)] = re.findall(
        r'<tr data-kind="login_changed">.*?<td class="login">[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>', history
    )
    assert (before != after, after) == (True, renamed.login)
    members_csv = export(client)
    assert len(members_csv) - 1 == 252  # every member, those who left included
    assert sorted(row[5] for row in members_csv[1:]).count("false") == 3


def sync_now(integration):
    """A Sync Now's run, synced by the actor's function as a worker would."""
    run, _ = tasks.request_member_sync(integration=integration, trigger=MemberSyncRun.Trigger.MANUAL)
    sync_github_members.fn(run.pk)
    run.refresh_from_db()
    return run


def export(client, query=""):
    response = client.get(f"/t/acme/github/members/export/{query}")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
