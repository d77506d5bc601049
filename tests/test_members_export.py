"""The members as CSV (github_members_export): every member, active or not, streamed, for admins."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.exports import MEMBER_COLUMNS
from integrations.models import GitHubIntegration, GitHubMember

# On PostgreSQL too (.ci/run): there the rows are read through a server-side cursor.
pytestmark = pytest.mark.postgres

URL = "/t/acme/github/members/export/"


@pytest.fixture
def connected(team):
    return GitHubIntegration.objects.create(team=team, organization_login="acme")


def add_members(integration, count, **fields):
    GitHubMember.objects.bulk_create(
        GitHubMember(integration=integration, github_id=n, node_id=f"U_{n}", login=f"user-{n:05d}", **fields)
        for n in range(1, count + 1)
    )


def exported(response):
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8"))))


def test_it_lists_every_member_active_and_not(client, alice, connected):
    left_at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    GitHubMember.objects.create(integration=connected, github_id=7, login="ann", name="Ann Ö", email="ann@example.com",
                                role="admin")  # fmt: skip
    GitHubMember.objects.create(integration=connected, github_id=3, login="bo", role="member", is_active=False,
                                left_at=left_at)  # fmt: skip
    client.force_login(alice)

    response = client.get(URL)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="acme-github-members.csv"'
    assert exported(response) == [
        list(MEMBER_COLUMNS),
        ["3", "bo", "", "", "member", "false", "2026-11-30T12:00:00+00:00"],
        ["7", "ann", "Ann Ö", "ann@example.com", "admin", "true", ""],
    ]


def test_a_cell_a_spreadsheet_would_run_is_written_as_text(client, alice, connected):
    GitHubMember.objects.create(integration=connected, github_id=1, login="eve", name='=HYPERLINK("http://x")',
                                email="@x", role="member")  # fmt: skip
    client.force_login(alice)

    row = exported(client.get(URL))[1]

    assert row[2:4] == ['\'=HYPERLINK("http://x")', "'@x"]


def test_it_reads_the_members_in_the_same_statements_however_many(client, alice, connected):
    client.force_login(alice)
    add_members(connected, 3)
    with CaptureQueriesContext(connection) as few:
        assert len(exported(client.get(URL))) == 4
    GitHubMember.objects.all().delete()
    add_members(connected, 4500)
    with CaptureQueriesContext(connection) as many:
        assert len(exported(client.get(URL))) == 4501

    assert len(many.captured_queries) == len(few.captured_queries)


def test_it_streams_whole_lines_in_pieces_of_many_lines(client, alice, connected):
    # The server hands each piece over on its own (config/threaded_wsgi.py): not a line each.
    add_members(connected, 4500, name="A Name", email="someone@example.com")
    client.force_login(alice)

    pieces = list(client.get(URL).streaming_content)

    assert 1 < len(pieces) <= 8
    assert all(piece.endswith(b"\r\n") for piece in pieces)
    assert sum(piece.count(b"\r\n") for piece in pieces) == 4501


def test_it_requires_admin(client, bob, connected):
    client.force_login(bob)

    assert client.get(URL).status_code == 403


def test_another_teams_member_gets_404(client, charlie, connected):
    client.force_login(charlie)

    assert client.get(URL).status_code == 404


def test_a_team_without_github_gets_404(client, alice, team):
    client.force_login(alice)

    assert client.get(URL).status_code == 404


@pytest.mark.services  # the members page reads its stream's current event id from Redis
def test_the_members_page_links_it_for_admins_only(client, alice, bob, connected):
    client.force_login(alice)
    assert b'href="/t/acme/github/members/export/"' in client.get("/t/acme/github/members/").content
    client.force_login(bob)
    assert b'href="/t/acme/github/members/export/"' not in client.get("/t/acme/github/members/").content
