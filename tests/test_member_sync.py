"""The member sync service against the GitHub simulator over real HTTP."""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.github.client import GitHubClient
from integrations.github.errors import (
    AccessRestricted,
    BadCredentials,
    GitHubUnavailable,
    MalformedResponse,
    OrganizationNotFound,
    RateLimited,
    SSORequired,
)
from integrations.github.schemas import MembersPage, OrganizationMember
from integrations.member_writes import stage_members
from integrations.models import GitHubIntegration, GitHubMember, MemberSyncRun, StagedMember
from integrations.sync import ReadSummary, apply_members, sync_members
from teams.models import Team
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def org(github):
    github.add_org("acme", size=250)
    return github.org("acme")


@pytest.fixture
def integration(org):
    team = Team.objects.create(name="Acme", slug="acme")
    return GitHubIntegration.objects.create(team=team, organization_login=org.login, organization_id=org.id)


@pytest.fixture
def token(github):
    return github.issue_token(scopes=("read:org",))


@pytest.fixture
def client(github, token):
    return GitHubClient(token, api_url=github.url, graphql_url=f"{github.url}/graphql", backoff_factor=0)


def sync(integration, *, client, on_progress=None):
    """A sync as the actor runs it: within a run of the integration."""
    run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status="syncing")
    try:
        return sync_members(run=run, client=client, on_progress=on_progress)
    finally:
        MemberSyncRun.objects.filter(pk=run.pk).update(status="complete")


def stored_members(integration):
    return {
        row["github_id"]: row
        for row in GitHubMember.objects.filter(integration=integration).values(
            "id", "github_id", "node_id", "login", "name", "email", "avatar_url", "role", "is_active", "left_at"
        )
    }


def member_writes(queries):
    table = GitHubMember._meta.db_table
    return [
        q["sql"] for q in queries if table in q["sql"] and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))
    ]


def test_it_imports_every_member(integration, client, org):
    result = sync(integration, client=client)

    assert (result.created, result.updated, result.deactivated, result.unchanged, result.total) == (250, 0, 0, 0, 250)
    stored = stored_members(integration)
    assert len(stored) == 250
    for member in org.members:
        row = stored[member.database_id]
        assert (row["login"], row["node_id"], row["role"]) == (member.login, member.node_id, member.role.lower())
        assert row["is_active"]


def test_it_reports_progress_after_each_page(integration, client):
    progress = []
    result = sync(integration, client=client, on_progress=lambda fetched, total: progress.append((fetched, total)))

    assert progress == [(100, 250), (200, 250), (250, 250)]
    assert result.api_calls == 3


def test_an_unchanged_resync_writes_no_member_rows(integration, client):
    sync(integration, client=client)
    with CaptureQueriesContext(connection) as queries:
        result = sync(integration, client=client)

    assert (result.created, result.updated, result.deactivated, result.unchanged) == (0, 0, 0, 250)
    assert member_writes(queries.captured_queries) == []


def test_it_updates_changed_members_and_counts_the_rest_unchanged(integration, client, org):
    sync(integration, client=client)
    org.rename_members(3)
    org.change_roles(2)
    org.update_profiles(4)

    result = sync(integration, client=client)

    assert result.updated == 9
    assert result.unchanged == 241
    stored = stored_members(integration)
    for member in org.members:
        row = stored[member.database_id]
        assert (row["login"], row["name"] or None, row["role"]) == (
            member.login,
            member.name or None,
            member.role.lower(),
        )


def test_a_renamed_login_keeps_its_member_row(integration, client, org):
    sync(integration, client=client)
    member = org.members[0]
    before = stored_members(integration)[member.database_id]
    org.rename_member(member.login, "renamed-login")

    sync(integration, client=client)

    after = stored_members(integration)[member.database_id]
    assert (after["id"], after["login"]) == (before["id"], "renamed-login")


def test_a_login_reused_by_another_user_after_a_rename(integration, client, org):
    sync(integration, client=client)
    first, second = org.members[0], org.members[1]
    old_login = first.login
    org.rename_member(first.login, "first-renamed")
    org.rename_member(second.login, old_login)

    result = sync(integration, client=client)

    stored = stored_members(integration)
    assert stored[first.database_id]["login"] == "first-renamed"
    assert stored[second.database_id]["login"] == old_login
    assert result.created == 0
    assert GitHubMember.objects.filter(integration=integration).count() == 250


def test_members_who_left_are_marked_inactive_never_deleted(integration, client, org):
    sync(integration, client=client)
    org.remove_members(5)

    result = sync(integration, client=client)

    assert (result.deactivated, result.total) == (5, 245)
    assert GitHubMember.objects.filter(integration=integration).count() == 250
    inactive = GitHubMember.objects.filter(integration=integration, is_active=False)
    assert inactive.count() == 5
    assert all(member.left_at is not None for member in inactive)


def test_new_members_are_created(integration, client, org):
    sync(integration, client=client)
    org.add_members(7)

    result = sync(integration, client=client)

    assert (result.created, result.total) == (7, 257)


def test_a_renamed_organization_is_followed_by_its_id(integration, client, org):
    sync(integration, client=client)
    org.rename("acme-renamed")

    result = sync(integration, client=client)

    assert result.unchanged == 250
    integration.refresh_from_db()
    assert integration.organization_login == "acme-renamed"


def test_a_missing_organization_is_reported(integration, client, org):
    org.rename("acme-renamed")
    integration.organization_id = None  # nothing to follow it by
    integration.save()

    with pytest.raises(OrganizationNotFound):
        sync(integration, client=client)
    assert GitHubMember.objects.count() == 0
    assert StagedMember.objects.count() == 0


def test_applying_takes_the_same_sql_statements_for_100_and_10_000_members():
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


def test_staging_takes_one_statement_a_page(integration, client):
    with CaptureQueriesContext(connection) as queries:
        sync(integration, client=client)
    stage_table = StagedMember._meta.db_table
    inserts = [q for q in queries.captured_queries if q["sql"].startswith(f'INSERT INTO "{stage_table}"')]
    assert len(inserts) == 3


FAULTS = [
    ("server_error", {}, GitHubUnavailable, "GitHub"),
    ("connection_reset", {}, GitHubUnavailable, "GitHub"),
    ("rate_limit_exhausted", {"reset_in": 600}, RateLimited, "rate limit"),
    ("secondary_rate_limit", {"retry_after": 60}, RateLimited, "rate limit"),
    ("bad_credentials", {}, BadCredentials, "reconnect"),
    ("sso_required", {}, SSORequired, "SAML"),
    ("access_restricted", {}, AccessRestricted, "owner"),
    ("org_not_found", {}, OrganizationNotFound, "acme"),
    ("malformed_json", {}, MalformedResponse, "GitHub"),
]


@pytest.mark.parametrize(("fault", "options", "error", "message"), FAULTS, ids=[fault[0] for fault in FAULTS])
def test_a_fault_mid_run_changes_no_membership(integration, client, github, org, fault, options, error, message):
    sync(integration, client=client)
    org.remove_members(3)
    org.add_members(3)
    org.rename_members(3)
    before = stored_members(integration)
    pages = client.iter_member_pages

    def fault_after_first_page(login, **options_):
        # In the thread that reads ahead, before it asks for the second page.
        for page in pages(login, **options_):
            yield page
            github.inject(fault, times=None, **options)

    client.iter_member_pages = fault_after_first_page

    with pytest.raises(error) as raised:
        sync(integration, client=client)

    assert message.lower() in str(raised.value).lower()
    assert stored_members(integration) == before
    assert StagedMember.objects.count() == 0


def test_a_revoked_token_is_reported_and_changes_nothing(integration, client, github, token):
    github.revoke_token(token)
    with pytest.raises(BadCredentials):
        sync(integration, client=client)
    assert GitHubMember.objects.count() == 0


def test_members_with_unusable_records_deactivate_nobody(integration, client, github, org):
    sync(integration, client=client)
    org.remove_members(2)
    github.inject("null_fields", times=None)

    result = sync(integration, client=client)

    assert result.skipped > 0
    assert result.deactivated == 0
    assert GitHubMember.objects.filter(integration=integration, is_active=False).count() == 0


def test_a_resource_limit_halves_the_page_size_and_completes(integration, client, github):
    github.inject("resource_limits", times=None, max_first=50)

    result = sync(integration, client=client)

    assert result.created == 250
    assert result.api_calls > 3


class PagesClient:
    """Stands in for GitHubClient where a test needs member records GitHub would rarely send."""

    def __init__(self, *pages):
        self.pages = pages
        self.api_calls = 0

    def iter_member_pages(self, login):
        for members in self.pages:
            self.api_calls += 1
            yield MembersPage(members=members, total=None, end_cursor=None, has_next_page=False)


def member(github_id, login, **fields):
    return OrganizationMember(github_id=github_id, node_id=f"U_{github_id}", login=login, role="member", **fields)


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


def test_the_next_page_is_asked_for_while_a_page_is_written(integration):
    asked = []

    class RecordingClient(PagesClient):
        def iter_member_pages(self, login):
            for number, page in enumerate(super().iter_member_pages(login), start=1):
                asked.append(number)
                yield page

    def on_progress(fetched, total):
        # The first page is written; the second was asked for meanwhile.
        if fetched == 1:
            wait_for(lambda: 2 in asked, timeout=5, message="the second page asked for")

    sync(integration, client=RecordingClient([member(1, "ann")], [member(2, "ben")]), on_progress=on_progress)


def test_an_error_reading_ahead_is_raised_to_the_sync_and_stops_the_reading(integration):
    class FailingClient(PagesClient):
        def iter_member_pages(self, login):
            yield MembersPage(members=[member(1, "ann")], total=None, end_cursor="a", has_next_page=True)
            raise GitHubUnavailable("no answer in time")

    with pytest.raises(GitHubUnavailable):
        sync(integration, client=FailingClient())
    assert GitHubMember.objects.count() == 0
    assert not any(thread.name == "member-pages-read-ahead" for thread in threading.enumerate())


def test_a_sync_that_stops_early_stops_the_reading(integration):
    def stop(fetched, total):
        raise KeyboardInterrupt

    endless = PagesClient(*([member(n, f"user-{n}")] for n in range(1, 1000)))
    with pytest.raises(KeyboardInterrupt):
        sync(integration, client=endless, on_progress=stop)
    assert endless.api_calls <= 3
    assert not any(thread.name == "member-pages-read-ahead" for thread in threading.enumerate())
