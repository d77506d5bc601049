"""GitHub's webhook deliveries, applied by the actor (docs/architecture.md#webhooks).

GitHub delivers at least once, in no guaranteed order: a delivery is a hint of what to look at, never
what to write. For a member event the actor reads that member's membership from GitHub now and writes
what GitHub says, so a late, repeated or replayed delivery changes nothing that is not true.
"""

import json
import logging
from dataclasses import replace
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations import words
from integrations.github import webhook_payloads
from integrations.github.client import GitHubClient
from integrations.github.errors import OrganizationNotFound
from integrations.github.schemas import OrganizationMember
from integrations.github.webhook_payloads import (
    Event,
    InstallationChange,
    OrganizationChange,
    Unusable,
    User,
    parse,
)
from integrations.member_sync import runs
from integrations.member_sync.sync import SyncResult, github_client, stored_fields
from integrations.models import (
    ConnectionChange,
    GitHubIntegration,
    GitHubMember,
    MemberChange,
    MemberSyncRun,
    WebhookDelivery,
)
from integrations.notifications import outbox
from integrations.words import ErrorKind

logger = logging.getLogger(__name__)

# Deliveries are remembered longer than GitHub lets an owner redeliver one (3 days on github.com, 7 on
# Enterprise Server), so that a redelivery of one already applied is answered and not applied again.
DELIVERIES_KEPT = timedelta(days=8)


def matching(change: Event):
    """The integrations a change is for: an organization's by its numeric id, which survives a
    rename (never its login), however it was connected; an installation's by the installation id."""
    if isinstance(change, InstallationChange):
        return GitHubIntegration.objects.filter(installation_id=change.installation.id)
    return GitHubIntegration.objects.filter(organization_id=change.organization.id)


def apply(event: str, payload: dict) -> list[GitHubIntegration]:
    """Apply a delivery the inbox accepted (the actor's work). Returns the integrations that only a
    full sync can bring up to date now: the actor queues one for each."""
    prune_deliveries()
    try:
        change = parse(event, payload)
    except Unusable as problem:
        logger.warning("Ignored a webhook change not in GitHub's shape: %s", problem)
        return []
    if isinstance(change, webhook_payloads.MemberChange):
        # A disconnected integration is no longer kept in sync.
        connected = list(matching(change).filter(disconnected_at__isnull=True))
        if change.membership.user is None:
            return connected  # the account was deleted since: a full sync finds who left by their id
        for integration in connected:
            apply_member_change(integration, change.membership.user)
        return []
    if isinstance(change, OrganizationChange):
        _apply_organization_change(change)
    elif isinstance(change, InstallationChange):
        return _apply_installation_change(change)
    return []


def prune_deliveries() -> None:
    """Forget deliveries older than DELIVERIES_KEPT: one indexed DELETE."""
    WebhookDelivery.objects.filter(received_at__lt=timezone.now() - DELIVERIES_KEPT).delete()


def apply_member_change(integration: GitHubIntegration, user: User) -> MemberSyncRun | None:
    """Look at the member the delivery names and write what GitHub says of them now, as a run with
    trigger `webhook` (runs.run_webhook_change)."""

    def read_and_write(run: MemberSyncRun) -> SyncResult:
        with github_client(integration) as client:
            member = member_now(client, integration, user)
        if member is None:
            result = _write_absent(integration, user, run=run)
        else:
            result = _write_present(integration, member, run=run)
        return replace(result, api_calls=client.api_calls)

    return runs.run_webhook_change(integration=integration, apply=read_and_write)


def member_now(client: GitHubClient, integration: GitHubIntegration, user: User) -> OrganizationMember | None:
    """The member as GitHub has them now, or None when they are no member. A login is a name of the
    moment: the account is the id, so a login that finds no membership, or someone else's, is looked
    up again under the account's and the organization's current names before it counts as gone."""
    login = integration.organization_login
    asked = (login, user.login)
    membership = client.organization_membership(*asked)
    if membership is not None and membership.user_id == user.id:
        return membership.member
    if integration.organization_id is not None:
        current = client.organization(integration.organization_id).login
        if current != login:
            GitHubIntegration.objects.filter(pk=integration.pk).update(organization_login=current)
            integration.organization_login = login = current
    user_login = client.user_login(user.id)
    if user_login is None:
        return None  # the account was deleted
    if (login, user_login) == asked:
        return None  # the same names, the same answer
    membership = client.organization_membership(login, user_login)
    return membership.member if membership is not None and membership.user_id == user.id else None


def _result(**counts) -> SyncResult:
    return SyncResult(**{"created": 0, "updated": 0, "deactivated": 0, "unchanged": 0, **counts}, total=1, api_calls=0)


def _write_present(integration: GitHubIntegration, member: OrganizationMember, *, run: MemberSyncRun) -> SyncResult:
    """Create the member, or bring them back and refresh what GitHub said of them, and record for
    `run` what changed. webhook_changed_at marks the change, so that a full sync that began reading
    before it keeps it."""
    now = timezone.now()
    fields = stored_fields(member)
    github_id = fields.pop("github_id")
    # None: GitHub did not say (the membership names no name or email): a stored member keeps theirs.
    said = {field: value for field, value in fields.items() if value is not None}
    for _attempt in range(2):
        with transaction.atomic():
            stored = (
                GitHubMember.objects.select_for_update().filter(integration=integration, github_id=github_id).first()
            )
            if stored is None:
                try:
                    with transaction.atomic():
                        GitHubMember.objects.create(
                            integration=integration, github_id=github_id, **{"name": "", "email": "", **said},
                            is_active=True, first_seen_at=now, updated_at=now, webhook_changed_at=now,
                        )  # fmt: skip
                except IntegrityError:
                    continue  # stored meanwhile (a full sync's insert): update it instead
                _record(run, github_id, said["login"], [(MemberChange.Kind.ADDED, "", said["login"])], now)
                return _result(created=1)
            changes = _changes(stored, said)
            if not changes:
                return _result(unchanged=1)
            _record(run, github_id, said["login"], changes, now)
            for field, value in said.items():
                setattr(stored, field, value)
            stored.is_active, stored.left_at, stored.deactivation_held_at = True, None, None
            stored.webhook_changed_at = stored.updated_at = now
            stored.save()
            return _result(updated=1)
    raise IntegrityError(f"Member {github_id} could be neither created nor found")


def _changes(stored: GitHubMember, said: dict) -> list[tuple[str, str, str]]:
    """(kind, before, after) of each change GitHub's word makes to the stored member, as a full sync
    records them (member_writes.record_staged_changes)."""
    kinds = MemberChange.Kind
    changes: list[tuple[str, str, str]] = [] if stored.is_active else [(kinds.REACTIVATED, "", "")]
    for field, kind in (("role", kinds.ROLE_CHANGED), ("login", kinds.LOGIN_CHANGED)):
        if field in said and getattr(stored, field) != said[field]:
            changes.append((kind, getattr(stored, field), said[field]))
    profile = {field: getattr(stored, field) for field in ("name", "email", "avatar_url")}
    if any(field in said and profile[field] != said[field] for field in profile):
        after = {field: said.get(field, value) for field, value in profile.items()}
        changes.append((kinds.PROFILE_CHANGED, json.dumps(profile), json.dumps(after)))
    return changes


def _record(run: MemberSyncRun, github_id: int, login: str, changes, now) -> None:
    MemberChange.objects.bulk_create(
        MemberChange(
            integration_id=run.integration_id,
            run=run,
            github_id=github_id,
            login=login,
            kind=kind,
            before=before,
            after=after,
            at=now,
        )  # fmt: skip
        for kind, before, after in changes
    )


def _write_absent(integration: GitHubIntegration, user: User, *, run: MemberSyncRun) -> SyncResult:
    """Mark the member inactive, never delete them, and record it for `run`. One not stored yet is
    stored as having left, so that a full sync that read them before they left does not add them."""
    now = timezone.now()
    left = {"is_active": False, "left_at": now, "updated_at": now, "deactivation_held_at": None}
    members = GitHubMember.objects.filter(integration=integration, github_id=user.id)
    with transaction.atomic():
        if members.filter(is_active=True).update(**left, webhook_changed_at=now):
            login = members.values_list("login", flat=True).first() or user.login
            _record(run, user.id, login, [(MemberChange.Kind.DEACTIVATED, "", "")], now)
            return _result(deactivated=1)
        if members.update(webhook_changed_at=now):
            return _result(unchanged=1)
        GitHubMember.objects.bulk_create(
            [GitHubMember(integration=integration, github_id=user.id, login=user.login, **left,
                          first_seen_at=now, webhook_changed_at=now)],
            ignore_conflicts=True,
        )  # fmt: skip
    return _result(unchanged=1)


def _apply_organization_change(change: OrganizationChange) -> None:
    """A rename or a deletion, checked with GitHub first: a late `renamed` names a login the
    organization may no longer have, and only GitHub can tell that an organization is gone."""
    for integration in matching(change).filter(disconnected_at__isnull=True):
        with github_client(integration) as client:
            if change.action == "renamed":
                login = client.organization(change.organization.id).login
                GitHubIntegration.objects.filter(pk=integration.pk).update(organization_login=login)
            elif not _organization_exists(client, change.organization.id):
                reason = words.ORGANIZATION_DELETED.format(login=change.organization.login)
                _disconnect(integration, reason, kind=ErrorKind.ORGANIZATION)


def _organization_exists(client: GitHubClient, organization_id: int) -> bool:
    try:
        client.organization(organization_id)
    except OrganizationNotFound:
        return False
    return True


def _apply_installation_change(change: InstallationChange) -> list[GitHubIntegration]:
    integrations = matching(change)
    now = timezone.now()
    if change.action == "suspend":
        for integration in integrations.filter(installation_suspended_at__isnull=True):
            # Each by a conditional UPDATE: a delivery applied twice at once announces it once.
            if GitHubIntegration.objects.filter(pk=integration.pk, installation_suspended_at__isnull=True).update(
                installation_suspended_at=now
            ):
                outbox.connection_broken(integration, kind=ErrorKind.SUSPENDED, reason=words.SYNCING_SUSPENDED)
    elif change.action in ("unsuspend", "new_permissions_accepted"):
        # The App may read the organization again: sync now rather than at the next scheduled pass.
        integrations.update(installation_suspended_at=None)
        return list(integrations.filter(disconnected_at__isnull=True))
    else:
        disconnect_uninstalled(integrations)
    return []


def disconnect_uninstalled(integrations) -> None:
    """The App was uninstalled from their organization: they say so and are no longer synced."""
    for integration in integrations.filter(disconnected_at__isnull=True):
        reason = words.APP_UNINSTALLED.format(login=integration.organization_login)
        _disconnect(integration, reason, kind=ErrorKind.INSTALLATION)


def _disconnect(integration: GitHubIntegration, reason: str, *, kind: ErrorKind) -> None:
    """GitHub ended the integration's connection: it says why, is no longer synced, its history
    records it and its team is told, once however many deliveries say so."""
    with transaction.atomic():
        disconnecting = GitHubIntegration.objects.filter(pk=integration.pk, disconnected_at__isnull=True)
        if disconnecting.update(disconnected_at=timezone.now(), disconnected_reason=reason):
            integration.disconnected_reason = reason
            ConnectionChange.record(integration, ConnectionChange.Kind.DISCONNECTED)
            outbox.connection_broken(integration, kind=kind, reason=reason)
