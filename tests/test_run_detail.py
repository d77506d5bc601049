"""A member sync run's detail page: for the team's admins, with its numbers and what to do."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from playwright.sync_api import expect
from pytest_django.asserts import assertContains, assertNotContains

from integrations.models import GitHubIntegration, GitHubMember, MemberSyncRun
from tests.stack import github_environment, sign_in, stack_environment, web_server

QUEUED = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def a_run(integration, **fields):
    return MemberSyncRun.objects.create(
        integration=integration,
        **{"trigger": "manual", "status": "complete", "queued_at": QUEUED, "started_at": QUEUED + timedelta(seconds=2),
           "finished_at": QUEUED + timedelta(seconds=14, milliseconds=500), **fields},
    )  # fmt: skip


def url(run):
    return f"/t/acme/github/members/runs/{run.pk}/"


def test_it_requires_admin(client, bob, integration):
    run = a_run(integration)
    client.force_login(bob)

    assert client.get(url(run)).status_code == 403


def test_a_run_of_another_team_is_not_found(client, charlie, other_team, integration):
    run = a_run(integration)
    client.force_login(charlie)

    assert client.get(f"/t/globex/github/members/runs/{run.pk}/").status_code == 404
    assert client.get(url(run)).status_code == 404


def test_it_shows_who_when_and_the_numbers(client, alice, integration):
    run = a_run(
        integration, requested_by=alice, fetched=250, total=250, members_created=3, members_updated=4,
        members_deactivated=5, members_unchanged=238, api_calls=7,
    )  # fmt: skip
    client.force_login(alice)

    response = client.get(url(run))

    assertContains(response, "<dt>Trigger</dt><dd>Manual</dd>", html=True)
    assertContains(response, "<dt>Requested by</dt><dd>alice</dd>", html=True)
    assertContains(
        response, '<time data-local="datetime" datetime="2025-03-04T09:00:02Z" title="2025-03-04 09:00:02 UTC">'
    )
    assertContains(response, "<dt>Duration</dt><dd>12.5 s</dd>", html=True)
    assertContains(response, "<dt>GitHub API calls</dt><dd>7</dd>", html=True)
    assertContains(
        response, "<tr><td>250</td><td>250</td><td>3</td><td>4</td><td>5</td><td>238</td><td>0</td><td>0</td></tr>",
        html=True,
    )  # fmt: skip
    assertNotContains(response, "What to do")


def test_an_error_says_its_kind_and_what_to_do(client, alice, integration):
    run = a_run(integration, status="error", error="Bad credentials", error_kind="credentials")
    client.force_login(alice)

    response = client.get(url(run))

    assertContains(response, "GitHub no longer accepts the connection")
    assertContains(response, "Bad credentials")
    assertContains(response, MemberSyncRun.REMEDIES[MemberSyncRun.ErrorKind.CREDENTIALS])


def test_every_kind_of_error_has_something_to_do():
    assert set(MemberSyncRun.REMEDIES) == set(MemberSyncRun.ErrorKind)


def test_the_latest_runs_held_members_are_named_and_skipped_ones_counted(client, alice, integration):
    earlier = a_run(integration, members_held=1)
    run = a_run(integration, queued_at=QUEUED + timedelta(hours=1), members_held=1, members_skipped=2)
    GitHubMember.objects.create(
        integration=integration, github_id=1, login="gone-user", deactivation_held_at=QUEUED + timedelta(hours=1)
    )
    client.force_login(alice)

    response = client.get(url(run))

    assertContains(response, '<li class="login">gone-user</li>', html=True)
    assertContains(response, "GitHub sent 2 members in a form that could not be read")
    assertNotContains(client.get(url(earlier)), "gone-user")


def test_recent_syncs_link_to_their_detail_for_admins_only(client, alice, bob, integration):
    run = a_run(integration)

    client.force_login(alice)
    assertContains(client.get("/t/acme/github/members/"), f'href="{url(run)}"')
    client.force_login(bob)
    assertNotContains(client.get("/t/acme/github/members/"), f'href="{url(run)}"')


def test_its_sql_statement_count_is_bounded(client, alice, integration):
    run = a_run(integration, members_held=150)
    GitHubMember.objects.bulk_create(
        GitHubMember(integration=integration, github_id=n, login=f"user-{n}", deactivation_held_at=QUEUED)
        for n in range(150)
    )
    GitHubIntegration.objects.filter(pk=integration.pk).update(member_sync_status="complete")
    client.force_login(alice)

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url(run)).status_code == 200

    # The session and user, the team membership, the run, the latest complete run, the held members,
    # the count of each kind of change and the changes shown.
    assert len(queries.captured_queries) <= 8


@pytest.mark.django_db(transaction=True)
def test_the_page_shows_in_a_browser(browser, alice, integration, github, screenshot):
    run = a_run(integration, requested_by=alice, status="error", error="Bad credentials", error_kind="credentials")
    with web_server(stack_environment(DEBUG=1, **github_environment(github))) as web:
        page = browser.new_context(viewport={"width": 1100, "height": 700}).new_page()
        sign_in(page.context, web.url, alice)
        page.goto(f"{web.url}{url(run)}")

        expect(page.get_by_role("heading", name="GitHub no longer accepts the connection")).to_be_visible()
        expect(page.get_by_text(MemberSyncRun.REMEDIES["credentials"])).to_be_visible()
        screenshot(page, "run-detail")
