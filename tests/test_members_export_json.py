"""The export as JSON for scripts (github_members_export?format=json): the members, or with changes=1
the changes, a page at a time in the CSV's order, each page linking the next; admins only."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.exports import MAX_PER_PAGE, MEMBER_COLUMNS
from integrations.models import GitHubIntegration, GitHubMember, MemberChange, MemberSyncRun
from tests.test_members_export import add_members

# On PostgreSQL too (.ci/run): the keyset's comparison of times and ids.
pytestmark = pytest.mark.postgres

URL = "/t/acme/github/members/export/?format=json"
CHANGES_URL = URL + "&changes=1"
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def connected(team):
    return GitHubIntegration.objects.create(team=team, organization_login="acme")


def page(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()


def every_page(client, url, key):
    """The rows of every page, following each page's next link, and how many pages there were."""
    rows, pages = [], 0
    while url:
        body = page(client, url)
        rows += body[key]
        url, pages = body["next"], pages + 1
    return rows, pages


def add_changes(integration, count, *, at=AT, **fields):
    run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status="complete")
    MemberChange.objects.bulk_create(
        MemberChange(integration=integration, run=run, github_id=n, login=f"user-{n}", kind="added", after=f"user-{n}",
                     at=at, **fields)
        for n in range(1, count + 1)
    )  # fmt: skip
    return run


def test_it_lists_every_member_with_native_types(client, alice, connected):
    GitHubMember.objects.create(integration=connected, github_id=7, login="ann", name="Ann Ö", email="ann@example.com",
                                role="admin")  # fmt: skip
    GitHubMember.objects.create(integration=connected, github_id=3, login="bo", role="member", is_active=False,
                                left_at=AT)  # fmt: skip
    client.force_login(alice)

    body = page(client, URL)

    assert body == {
        "members": [
            {"github_id": 3, "login": "bo", "name": "", "email": "", "role": "member", "is_active": False,
             "left_at": "2026-11-30T12:00:00+00:00"},
            {"github_id": 7, "login": "ann", "name": "Ann Ö", "email": "ann@example.com", "role": "admin",
             "is_active": True, "left_at": None},
        ],
        "next": None,
    }  # fmt: skip
    assert list(body["members"][0]) == list(MEMBER_COLUMNS)


def test_its_pages_link_the_next_until_every_member_is_listed(client, alice, connected):
    add_members(connected, 25)
    client.force_login(alice)

    first = page(client, URL + "&per_page=10")
    members, pages = every_page(client, URL + "&per_page=10", "members")

    assert first["next"].startswith("http://testserver/t/acme/github/members/export/?")
    assert [member["github_id"] for member in members] == list(range(1, 26))
    assert pages == 3


def test_an_exact_last_page_has_no_next(client, alice, connected):
    add_members(connected, 20)
    client.force_login(alice)

    assert every_page(client, URL + "&per_page=10", "members")[1] == 2


def test_a_page_lists_members_by_github_id_not_by_insertion(client, alice, connected):
    for github_id in (30, 10, 20):
        GitHubMember.objects.create(integration=connected, github_id=github_id, login=f"u{github_id}")
    client.force_login(alice)

    members, _ = every_page(client, URL + "&per_page=1", "members")

    assert [member["github_id"] for member in members] == [10, 20, 30]


def test_the_changes_come_oldest_first_with_native_types(client, alice, connected):
    run = MemberSyncRun.objects.create(integration=connected, trigger="manual", status="complete")
    later = AT + timedelta(seconds=1)
    profile = {"name": "Old", "email": "", "avatar_url": ""}
    MemberChange.objects.create(
        integration=connected,
        run=run,
        github_id=2,
        login="bo",
        kind="profile_changed",
        before=json.dumps(profile),
        after=json.dumps({**profile, "name": "New"}),
        at=later,
    )
    MemberChange.objects.create(
        integration=connected, run=run, github_id=1, login="ann", kind="added", after="ann", at=AT
    )
    MemberChange.objects.create(integration=connected, run=run, github_id=1, login="ann", kind="role_changed",
                                before="member", after="admin", at=later)  # fmt: skip
    client.force_login(alice)

    body = page(client, CHANGES_URL)

    assert body == {
        "changes": [
            {"at": "2026-11-30T12:00:00+00:00", "run": run.pk, "kind": "added", "github_id": 1, "login": "ann",
             "before": None, "after": "ann"},
            {"at": "2026-11-30T12:00:01+00:00", "run": run.pk, "kind": "profile_changed", "github_id": 2,
             "login": "bo", "before": profile, "after": {**profile, "name": "New"}},
            {"at": "2026-11-30T12:00:01+00:00", "run": run.pk, "kind": "role_changed", "github_id": 1,
             "login": "ann", "before": "member", "after": "admin"},
        ],
        "next": None,
    }  # fmt: skip


def test_changes_made_at_the_same_time_page_by_id_none_lost_none_twice(client, alice, connected):
    add_changes(connected, 7)  # one run: every change at the same time
    add_changes(connected, 4, at=AT - timedelta(days=1))
    client.force_login(alice)

    changes, pages = every_page(client, CHANGES_URL + "&per_page=3", "changes")

    assert [(change["at"][:10], change["github_id"]) for change in changes] == (
        [("2026-11-29", n) for n in range(1, 5)] + [("2026-11-30", n) for n in range(1, 8)]
    )
    assert pages == 4


def test_a_page_takes_the_same_statements_however_big_or_deep(client, alice, connected):
    client.force_login(alice)
    add_members(connected, 3)
    with CaptureQueriesContext(connection) as small:
        assert page(client, URL + "&per_page=2")["next"]
    GitHubMember.objects.all().delete()
    add_members(connected, 6000)
    deep = page(client, URL + "&per_page=1000")
    deep = page(client, deep["next"].removeprefix("http://testserver"))
    with CaptureQueriesContext(connection) as big:
        assert len(page(client, deep["next"].removeprefix("http://testserver") + "&per_page=5000")["members"]) == 4000

    assert len(big.captured_queries) == len(small.captured_queries)


def test_a_changes_page_takes_the_same_statements_however_big_or_deep(client, alice, connected):
    client.force_login(alice)
    add_changes(connected, 3)
    with CaptureQueriesContext(connection) as small:
        assert page(client, CHANGES_URL + "&per_page=2")["next"]
    add_changes(connected, 3000, at=AT + timedelta(hours=1))
    first = page(client, CHANGES_URL + "&per_page=2")
    with CaptureQueriesContext(connection) as big:
        assert len(page(client, first["next"].removeprefix("http://testserver") + "&per_page=3000")["changes"]) == 3000

    assert len(big.captured_queries) == len(small.captured_queries)


def test_it_requires_admin(client, bob, connected):
    client.force_login(bob)

    assert client.get(URL).status_code == 403
    assert client.get(CHANGES_URL).status_code == 403


def test_another_teams_admin_gets_404(client, charlie, connected):
    client.force_login(charlie)

    assert client.get(URL).status_code == 404


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("?format=xml", "format"),
        ("?format=json&per_page=0", "per_page"),
        (f"?format=json&per_page={MAX_PER_PAGE + 1}", "per_page"),
        ("?format=json&per_page=ten", "per_page"),
        ("?format=json&per_page=-5", "per_page"),
        ("?format=json&per_page=" + "9" * 5000, "per_page"),
        ("?format=json&after=not-a-cursor!", "after"),
        ("?format=json&after=", "after"),
        ("?format=json&after=" + "W1tb" * 1000, "after"),  # "[[[…": deeper than JSON's parser goes
        ("?format=json&after=WyJtZW1iZXJzIl0", "after"),  # ["members"]: no id
        ("?format=json&after=WyJtZW1iZXJzIiwgIjEwIl0", "after"),  # ["members", "10"]
        ("?format=json&after=WyJtZW1iZXJzIiwgdHJ1ZV0", "after"),  # ["members", true]
        ("?format=json&changes=1&after=WyJtZW1iZXJzIiwgMTBd", "after"),  # a members cursor for the changes
        # ["changes", "not a time", 1]
        ("?format=json&changes=1&after=WyJjaGFuZ2VzIiwgIm5vdCBhIHRpbWUiLCAxXQ", "after"),
        ("?format=json&changes=1&after=WyJjaGFuZ2VzIiwgIjIwMjYtMTEtMzBUMTI6MDA6MDAiLCAxXQ", "after"),  # naive time
        ("?after=WyJtZW1iZXJzIiwgMTBd", "after"),  # paging the CSV
        ("?per_page=10", "per_page"),
    ],
)
def test_a_bad_parameter_answers_400_saying_which(client, alice, connected, query, says):
    client.force_login(alice)

    response = client.get("/t/acme/github/members/export/" + query)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert says in response.json()["error"]


def test_the_csv_stays_the_default(client, alice, connected):
    client.force_login(alice)

    for url in ("/t/acme/github/members/export/", "/t/acme/github/members/export/?format=csv"):
        assert client.get(url)["Content-Type"] == "text/csv; charset=utf-8"
