"""The member sync reading GitHub: pages one after another (the next asked for while one is
written), progress, and faults on the way, which change no membership."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.github.errors import (
    AccessRestricted,
    BadCredentials,
    GitHubUnavailable,
    MalformedResponse,
    OrganizationNotFound,
    RateLimited,
    SSORequired,
)
from integrations.models import GitHubMember, StagedMember
from tests.syncing import stored_members, sync

# On PostgreSQL too (.ci/run): member_writes.py's hand-written SQL, one form per engine.
pytestmark = pytest.mark.postgres


@pytest.fixture
def org(github):
    """The simulator's organization acme, which `integration` reads."""
    return github.org("acme")


def test_it_reports_progress_after_each_page(integration, github_client):
    progress = []
    result = sync(integration, client=github_client, on_progress=progress.append)

    assert [(each.fetched, each.total) for each in progress] == [(100, 250), (200, 250), (250, 250)]
    assert progress[-1].api_calls == result.api_calls
    assert progress[-1].rate_limit_remaining is not None
    assert result.api_calls == 3


def test_a_github_without_rate_limiting_syncs_every_member_and_reports_no_rate_limit(
    integration, github_client, github
):
    github.set_rate_limit(None)
    progress = []

    result = sync(integration, client=github_client, on_progress=progress.append)

    assert (result.created, result.total) == (250, 250)
    assert {(each.rate_limit_remaining, each.rate_limit_reset_at) for each in progress} == {(None, None)}
    assert GitHubMember.objects.filter(integration=integration, is_active=True).count() == 250


def test_a_missing_organization_is_reported(integration, github_client, org):
    org.rename("acme-renamed")
    integration.organization_id = None  # nothing to follow it by
    integration.save()

    with pytest.raises(OrganizationNotFound):
        sync(integration, client=github_client)
    assert GitHubMember.objects.count() == 0
    assert StagedMember.objects.count() == 0


def test_staging_takes_one_statement_a_page(integration, github_client):
    with CaptureQueriesContext(connection) as queries:
        sync(integration, client=github_client)
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
def test_a_fault_mid_run_changes_no_membership(integration, github_client, github, org, fault, options, error, message):
    sync(integration, client=github_client)
    org.remove_members(3)
    org.add_members(3)
    org.rename_members(3)
    before = stored_members(integration)
    pages = github_client.iter_member_pages

    def fault_after_first_page(login, **options_):
        # In the thread that reads ahead, before it asks for the second page.
        for page in pages(login, **options_):
            yield page
            github.inject(fault, times=None, **options)

    github_client.iter_member_pages = fault_after_first_page

    with pytest.raises(error) as raised:
        sync(integration, client=github_client)

    assert message.lower() in str(raised.value).lower()
    assert stored_members(integration) == before
    assert StagedMember.objects.count() == 0


def test_a_revoked_token_is_reported_and_changes_nothing(integration, github_client, github, github_token):
    github.revoke_token(github_token)
    with pytest.raises(BadCredentials):
        sync(integration, client=github_client)
    assert GitHubMember.objects.count() == 0


def test_a_resource_limit_halves_the_page_size_and_completes(integration, github_client, github):
    github.inject("resource_limits", times=None, max_first=50)

    result = sync(integration, client=github_client)

    assert result.created == 250
    assert result.api_calls > 3
