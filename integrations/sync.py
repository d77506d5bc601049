"""The member sync: read every page of an organization's members from GitHub, then apply them to
the team in one transaction.

It knows nothing of Dramatiq or of events: the caller passes a GitHub client and a progress
callback. Nothing is written until every page has been read, so a run that fails or stops early
changes no membership.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from integrations.github.client import GitHubClient
from integrations.github.errors import OrganizationNotFound
from integrations.github.schemas import OrganizationMember
from integrations.member_writes import PROFILE_FIELDS, insert_members, update_members
from integrations.models import GitHubIntegration, GitHubMember

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], None]


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


@dataclass
class FetchedMembers:
    members: dict[int, OrganizationMember]
    skipped: int
    organization_login: str


def sync_members(
    integration: GitHubIntegration, *, client: GitHubClient, on_progress: ProgressCallback | None = None
) -> SyncResult:
    fetched = fetch_members(integration, client=client, on_progress=on_progress)
    counts = apply_members(integration, fetched)
    return SyncResult(**counts, total=len(fetched.members), api_calls=client.api_calls, skipped=fetched.skipped)


def fetch_members(
    integration: GitHubIntegration, *, client: GitHubClient, on_progress: ProgressCallback | None = None
) -> FetchedMembers:
    """Every page of the organization's members. Writes nothing."""
    on_progress = on_progress or (lambda fetched, total: None)
    login = integration.organization_login
    try:
        return _read_all_pages(client, login, on_progress)
    except OrganizationNotFound:
        renamed_to = _current_login(integration, client)
        if renamed_to is None or renamed_to == login:
            raise
        logger.info("Organization %s was renamed to %s", login, renamed_to)
        return _read_all_pages(client, renamed_to, on_progress)


def _read_all_pages(client, login, on_progress) -> FetchedMembers:
    members: dict[int, OrganizationMember] = {}
    skipped = 0
    for page in client.iter_member_pages(login):
        # Keyed by id: a member GitHub lists twice while the organization changes under the cursor
        # counts once.
        members.update((member.github_id, member) for member in page.members)
        skipped += page.skipped
        on_progress(len(members), page.total)
    return FetchedMembers(members=members, skipped=skipped, organization_login=login)


def _current_login(integration, client) -> str | None:
    """An organization keeps its id when renamed: find it among the viewer's organizations."""
    if integration.organization_id is None:
        return None
    for organization in client.viewer_organizations().organizations:
        if organization.id == integration.organization_id:
            return organization.login
    return None


def _profile(member: OrganizationMember) -> dict:
    """The stored form of what GitHub sent: cut to the column sizes, links only over http(s)."""
    values = {field: getattr(member, field) or "" for field in PROFILE_FIELDS}
    if not values["avatar_url"].startswith(("https://", "http://")):
        values["avatar_url"] = ""
    for field in PROFILE_FIELDS:
        values[field] = values[field][: GitHubMember._meta.get_field(field).max_length]
    return values


@transaction.atomic
def apply_members(integration: GitHubIntegration, fetched: FetchedMembers) -> dict:
    """Create, update, deactivate and reactivate members to match what was fetched, in one
    transaction. Returns the counts of created, updated, deactivated and unchanged members."""
    if fetched.organization_login != integration.organization_login:
        integration.organization_login = fetched.organization_login
        integration.save(update_fields=["organization_login"])
    now = timezone.now()
    may_deactivate = fetched.skipped == 0
    remaining = dict(fetched.members)
    changed = []
    deactivated = unchanged = updated = 0

    existing = GitHubMember.objects.filter(integration=integration).values_list(
        "id", "github_id", "is_active", *PROFILE_FIELDS
    )
    for pk, github_id, is_active, *stored in existing:
        member = remaining.pop(github_id, None)
        if member is None:
            if is_active and may_deactivate:
                changed.append({"id": pk, "is_active": False, **dict(zip(PROFILE_FIELDS, stored, strict=True))})
                deactivated += 1
            continue
        profile = _profile(member)
        if is_active and list(profile.values()) == stored:
            unchanged += 1
            continue
        changed.append({"id": pk, "is_active": True, **profile})
        updated += 1

    created = [{"github_id": github_id, **_profile(member)} for github_id, member in remaining.items()]
    insert_members(integration_id=integration.pk, members=created, now=now)
    update_members(members=changed, now=now)
    return {"created": len(created), "updated": updated, "deactivated": deactivated, "unchanged": unchanged}
