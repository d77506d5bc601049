"""The member sync: read every page of an organization's members from GitHub into the run's stage
(StagedMember, a page at a time), then apply the stage to the team in one transaction, so that a run
that fails or stops early changes no membership. It knows nothing of Dramatiq or of events: the
caller passes the run, a GitHub client and a progress callback.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from integrations.github import app
from integrations.github.client import GitHubClient
from integrations.github.errors import InstallationNotFound, OrganizationNotFound
from integrations.github.schemas import OrganizationMember
from integrations.member_sync.member_writes import (
    PROFILE_FIELDS,
    insert_staged,
    record_changes_of,
    record_staged_changes,
    stage_members,
    staged_counts,
    update_staged,
)
from integrations.models import GitHubIntegration, GitHubMember, MemberChange, MemberSyncRun, StagedMember, max_length

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """How far the read has come, after each page: what the progress callback is told."""

    fetched: int
    total: int | None
    # The GitHub calls made so far, and GitHub's rate limit as the last answer gave it.
    api_calls: int
    rate_limit_remaining: int | None
    rate_limit_reset_at: datetime | None


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class SyncResult:
    created: int
    updated: int
    deactivated: int
    unchanged: int
    total: int
    api_calls: int
    # Members GitHub sent in a form we could not use; while there are any, nobody is deactivated.
    skipped: int = 0
    # Members missing from GitHub kept active until an admin decides: too many at once
    # (docs/architecture.md#who-may-deactivate).
    held: int = 0


@dataclass(frozen=True)
class ReadSummary:
    """What reading the pages told beyond the staged members themselves."""

    skipped: int
    organization_login: str


def github_client(integration: GitHubIntegration) -> GitHubClient:
    """The client a sync reads GitHub with: the person's token, or the App installation's. An
    installation's token is minted here, so that an installation gone or suspended fails the run
    before it reads anything; and again by the client whenever the kept one nears its end (a run may
    outlast a token's hour: MEMBER_SYNC_TIME_LIMIT_SECONDS has no upper bound), or once GitHub
    refuses it (revoked before its hour was over)."""
    if integration.connection == GitHubIntegration.Connection.APP:
        installation_id = integration.installation_id
        if installation_id is None:
            raise InstallationNotFound()
        app.installation_token(installation_id)
        return GitHubClient(
            partial(app.installation_token, installation_id),
            renew_token=partial(app.forget_installation_token, installation_id),
            installation=True,
        )
    return GitHubClient(integration.access_token)


def sync_members(
    *, run: MemberSyncRun, client: GitHubClient, on_progress: ProgressCallback | None = None
) -> SyncResult:
    """Read the run's integration's members from GitHub and apply them. The run's stage is empty
    when this returns, whatever happened."""
    # A worker killed during an earlier attempt (or an earlier run) may have left rows behind: only
    # one run of an integration is under way at a time, so every staged row of it is this one's or
    # garbage.
    discard_stage(integration=run.integration)
    try:
        read = read_members(run=run, client=client, on_progress=on_progress)
        counts = apply_members(run=run, read=read)
    finally:
        discard_stage(run=run)
    return SyncResult(**counts, api_calls=client.api_calls, skipped=read.skipped)


def discard_stage(*, run: MemberSyncRun | None = None, integration: GitHubIntegration | None = None) -> None:
    if run is not None:
        StagedMember.objects.filter(run=run).delete()
    if integration is not None:
        StagedMember.objects.filter(run__in=MemberSyncRun.objects.filter(integration=integration)).delete()


def read_members(
    *, run: MemberSyncRun, client: GitHubClient, on_progress: ProgressCallback | None = None
) -> ReadSummary:
    """Every page of the organization's members, into the run's stage. Changes no member."""
    on_progress = on_progress or (lambda progress: None)
    integration = run.integration
    login = integration.organization_login
    try:
        return _stage_all_pages(run, client, login, on_progress)
    except OrganizationNotFound:
        renamed_to = _current_login(integration, client)
        if renamed_to is None or renamed_to == login:
            raise
        logger.info("Organization %s was renamed to %s", login, renamed_to)
        discard_stage(run=run)
        return _stage_all_pages(run, client, renamed_to, on_progress)


def _stage_all_pages(run, client, login, on_progress) -> ReadSummary:
    fetched = skipped = 0
    for page in client.iter_member_pages(login):
        # Keyed by id within a page too: the stage's upsert may meet each member once a statement.
        members = {member.github_id: stored_fields(member) for member in page.members}
        stage_members(run_id=run.pk, members=list(members.values()))
        # The progress counts what GitHub listed: a member listed twice (the organization changed
        # under the cursor) counts twice here, once in the result.
        fetched += len(members)
        skipped += page.skipped
        on_progress(
            Progress(
                fetched=fetched,
                total=page.total,
                api_calls=client.api_calls,
                rate_limit_remaining=client.rate_limit_remaining,
                rate_limit_reset_at=client.rate_limit_reset_at,
            )
        )
    return ReadSummary(skipped=skipped, organization_login=login)


def _current_login(integration, client) -> str | None:
    """An organization keeps its id when renamed: find it among the viewer's organizations (an
    installation has no viewer's list, but may read its organization by id)."""
    if integration.organization_id is None:
        return None
    if client.installation:
        return client.organization(integration.organization_id).login
    for organization in client.viewer_organizations().organizations:
        if organization.id == integration.organization_id:
            return organization.login
    return None


# Looked up once: per member and field, the lookup cost more than the cut.
_MAX_LENGTHS = {field: max_length(GitHubMember, field) for field in PROFILE_FIELDS}
_MAY_BE_UNSAID = frozenset({"name", "email"})


def stored_fields(member: OrganizationMember) -> dict:
    """The stored form of what GitHub sent: cut to the column sizes, links only over http(s). A name
    or email GitHub did not give (None) stays None, so that the stored one is kept."""
    values: dict[str, int | str | None] = {"github_id": member.github_id}
    for field, limit in _MAX_LENGTHS.items():
        value = getattr(member, field)
        values[field] = None if value is None and field in _MAY_BE_UNSAID else (value or "")[:limit]
    if not str(values["avatar_url"]).startswith(("https://", "http://")):
        values["avatar_url"] = ""
    return values


@transaction.atomic
def apply_members(*, run: MemberSyncRun, read: ReadSummary) -> dict:
    """Create, update, deactivate and reactivate members to match the run's stage, in one
    transaction and a fixed number of statements whatever the organization's size; return the counts.

    Members missing from the stage are deactivated only when every member could be read, and only
    if they are not too many: more than the MEMBER_SYNC_HOLD_DEACTIVATIONS_* settings allow are
    held (kept active, marked) for an admin to confirm or dismiss. A held member listed again is
    released; one missing again stays held, or is deactivated once the others came back.
    """
    integration = run.integration
    if read.organization_login != integration.organization_login:
        integration.organization_login = read.organization_login
        integration.save(update_fields=["organization_login"])
    now = timezone.now()
    # A change a webhook applied after this run began reading is newer than the stage: the members
    # it touched keep it, neither overwritten, reactivated nor deactivated
    # (docs/architecture.md#who-may-deactivate). A run applied without having been started (only
    # tests do) began reading when it was created.
    read_since = run.started_at or run.queued_at
    overwritable = Q(webhook_changed_at__isnull=True) | Q(webhook_changed_at__lte=read_since)
    counts = staged_counts(run_id=run.pk, integration_id=integration.pk, read_since=read_since)
    staged = Exists(StagedMember.objects.filter(run=run, github_id=OuterRef("github_id")))
    active = GitHubMember.objects.filter(integration=integration, is_active=True)
    before = active.aggregate(
        active=Count("pk"),
        missing=Count("pk", filter=~staged & overwritable),
        held_missing=Count("pk", filter=~staged & overwritable & Q(deactivation_held_at__isnull=False)),
    )
    # Statements that would write nothing are not sent: a re-sync that finds nothing changed writes
    # no member rows.
    if counts["created"] or counts["updated"]:
        record_staged_changes(run_id=run.pk, integration_id=integration.pk, now=now, read_since=read_since)
    if counts["created"]:
        insert_staged(run_id=run.pk, integration_id=integration.pk, now=now)
    if counts["updated"] or counts["released"]:
        update_staged(run_id=run.pk, integration_id=integration.pk, now=now, read_since=read_since)
    missing = active.exclude(staged).filter(overwritable)
    deactivated = held = 0
    if read.skipped:
        held = before["held_missing"]  # undecided: those held stay held, nobody else is
    elif _too_many_to_deactivate(before["missing"], of=before["active"]):
        if before["missing"] > before["held_missing"]:
            newly_held = missing.filter(deactivation_held_at__isnull=True)
            record_changes_of(newly_held, run_id=run.pk, kind=MemberChange.Kind.HELD, now=now)
            newly_held.update(deactivation_held_at=now)
        held = before["missing"]
    elif before["missing"]:
        record_changes_of(missing, run_id=run.pk, kind=MemberChange.Kind.DEACTIVATED, now=now)
        deactivated = missing.update(is_active=False, left_at=now, updated_at=now, deactivation_held_at=None)
    return {
        "created": counts["created"],
        "updated": counts["updated"],
        "deactivated": deactivated,
        "held": held,
        "unchanged": counts["total"] - counts["created"] - counts["updated"],
        "total": counts["total"],
    }


def _too_many_to_deactivate(count: int, *, of: int) -> bool:
    percent, minimum = settings.MEMBER_SYNC_HOLD_DEACTIVATIONS_PERCENT, settings.MEMBER_SYNC_HOLD_DEACTIVATIONS_MIN
    return count > minimum and count * 100 > of * percent
