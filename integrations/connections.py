"""Connecting a GitHub organization: the team, its admin, the integration and the first sync
(docs/architecture.md#from-sync-now-to-the-live-page).

The views hand over what GitHub answered (the organization record, the token and its scopes); the
first sync is only queued here, so that no request waits on the organization's members.
"""

import logging
from collections.abc import Sequence

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from integrations.crypto import TokenUnreadable
from integrations.github import app, oauth
from integrations.github.errors import GitHubError
from integrations.github.schemas import Installation, Organization
from integrations.member_sync.tasks import request_member_sync
from integrations.models import ConnectionChange, GitHubIntegration, MemberSyncRun
from teams.models import Membership, Team
from teams.services import create_team

logger = logging.getLogger(__name__)


@sensitive_variables("token")
def connect_organization(
    *, user, organization: Organization, token: str, scopes: Sequence[str], team: Team | None = None
) -> Team:
    """Create a team for the organization with the user as its admin, or connect `team` (an existing
    team without an integration), and queue the first member sync. A user already in a team connected
    to this organization gets that team back: a second onboarding (or a double submit) makes no other."""
    team, _ = _connect(
        user=user, organization=organization, team=team, fields={"scopes": ",".join(scopes)}, token=token
    )
    return team


def connect_installation(
    *, user, installation: Installation, team: Team | None = None, replace: bool = False
) -> tuple[Team, bool]:
    """connect_organization for a GitHub App installation on an organization the user can reach (the
    caller checked, with their own authorization): the integration reads GitHub with the
    installation's tokens, and stores none. Returns the team, and whether its integration is new.

    An integration of this organization already there (the user's team, or `team`) is switched to
    the installation, if the user administers its team and confirmed the replacement (`replace`;
    else ReplacementUnconfirmed, unless it is this installation); `team` connected to another
    organization raises WrongOrganization.
    """
    account = installation.account
    if account is None:
        raise ValueError("An installation on no user or organization cannot be connected.")
    organization = Organization(id=account.id, login=account.login)
    fields = {
        "connection": GitHubIntegration.Connection.APP,
        "installation_id": installation.id,
        "installation_suspended_at": installation.suspended_at,
        "disconnected_at": None,
        "disconnected_reason": "",
        "scopes": "",
    }
    return _connect(
        user=user, organization=organization, team=team, fields=fields, switch_existing=True, replace=replace
    )


class WrongOrganization(Exception):
    def __init__(self, integration: GitHubIntegration):
        self.integration = integration
        super().__init__(f"The team is connected to {integration.organization_login}.")


class ReplacementUnconfirmed(Exception):
    """The team has another connection, and its admin did not confirm replacing it."""

    def __init__(self, integration: GitHubIntegration):
        self.integration = integration
        super().__init__(f"The team {integration.team_id} has a connection that was not confirmed to be replaced.")


@sensitive_variables("token")
def _connect(
    *, user, organization: Organization, team: Team | None, fields: dict, token="", switch_existing=False, replace=False
):
    with transaction.atomic():
        if team is None:
            # Serializes one user's onboardings (PostgreSQL; SQLite's IMMEDIATE transactions already
            # do), so that two submits at once cannot both find no team and create two.
            get_user_model().objects.select_for_update().get(pk=user.pk)
            existing = (
                Team.objects.filter(memberships__user=user, github_integration__organization_id=organization.id)
                .order_by("pk")
                .first()
            )
            if existing is not None:
                if switch_existing and existing.memberships.filter(user=user, role=Membership.Role.ADMIN).exists():
                    _switch_confirmed(existing.github_integration, user, organization, fields, replace=replace)
                return existing, False
            team = create_team(name=organization.name or organization.login, slug_from=organization.login, admin=user)
        else:
            # Two admins connecting the same team at once: the second finds the first's integration.
            Team.objects.select_for_update().get(pk=team.pk)
            integration = GitHubIntegration.objects.filter(team=team).first()
            if integration is not None:
                if switch_existing:
                    if not is_connected_to(integration, organization):
                        raise WrongOrganization(integration)
                    _switch_confirmed(integration, user, organization, fields, replace=replace)
                return team, False
        integration = GitHubIntegration(
            team=team,
            organization_login=organization.login,
            organization_id=organization.id,
            connected_by=user,
            connected_at=timezone.now(),
            **fields,
        )
        integration.access_token = token
        integration.save()
        ConnectionChange.record(integration, ConnectionChange.Kind.CONNECTED, by=user)
        request_member_sync(integration=integration, trigger=MemberSyncRun.Trigger.ONBOARDING, requested_by=user)
    return team, True


def is_connected_to(integration: GitHubIntegration, organization: Organization) -> bool:
    # By id, which survives renames; integrations saved without one only have the login.
    if integration.organization_id is not None:
        return integration.organization_id == organization.id
    return integration.organization_login.lower() == organization.login.lower()


def _switch_confirmed(integration, user, organization: Organization, fields: dict, *, replace: bool) -> None:
    """Point an integration at the same organization through another connection: its members and
    runs stay, the person's token (if any) is dropped, and revoked at GitHub."""
    # The same installation again changes nothing that needs asking; any other connection does.
    same = integration.connection == fields["connection"] and integration.installation_id == fields["installation_id"]
    if not (replace or same):
        raise ReplacementUnconfirmed(integration)
    before = integration.description
    revoke_after_commit(integration, keep_installation=fields.get("installation_id"))
    for name, value in fields.items():
        setattr(integration, name, value)
    integration.access_token = ""
    integration.organization_login = organization.login
    integration.organization_id = organization.id
    integration.connected_by = user
    integration.connected_at = timezone.now()
    integration.save()
    if not same:
        ConnectionChange.record(integration, ConnectionChange.Kind.REPLACED, by=user, before=before)


@sensitive_variables("token")
def reconnect(
    *, integration: GitHubIntegration, user, token: str, scopes: Sequence[str], organization: Organization | None = None
) -> GitHubIntegration:
    """Give an existing integration a new token, after the old one was revoked or lost a scope.
    `organization`, GitHub's current record of it, brings a renamed organization's new login along:
    the old one no longer resolves."""
    before = integration.description
    revoke_after_commit(integration)
    integration.access_token = token
    integration.scopes = ",".join(scopes)
    integration.connected_by = user
    integration.connected_at = timezone.now()
    # A team that read GitHub through the App goes back to a person's token.
    integration.connection = GitHubIntegration.Connection.OAUTH
    integration.installation_id = integration.installation_suspended_at = integration.disconnected_at = None
    integration.disconnected_reason = ""
    fields = [
        "encrypted_access_token", "scopes", "connected_by", "connected_at", "connection", "installation_id",
        "installation_suspended_at", "disconnected_at", "disconnected_reason",
    ]  # fmt: skip
    if organization is not None:
        integration.organization_login = organization.login
        integration.organization_id = organization.id
        fields += ["organization_login", "organization_id"]
    integration.save(update_fields=fields)
    ConnectionChange.record(integration, ConnectionChange.Kind.RECONNECTED, by=user, before=before)
    return integration


def revoke_after_commit(integration: GitHubIntegration, *, keep_installation: int | None = None) -> None:
    """Revoke at GitHub what the integration's connection, about to be replaced or removed, read
    with: its person's token (OAuth), or the installation token this process keeps (unless the new
    connection is the same installation). After the commit, so that a replacement rolled back keeps
    a working token; and never failing the user's action: GitHub refusing is logged, without the token."""
    try:
        token = integration.access_token if integration.has_access_token and settings.GITHUB_CLIENT_ID else ""
    except TokenUnreadable:
        token = ""  # written under a key no longer configured: nobody can send it anywhere
    installation_id = integration.installation_id if integration.installation_id != keep_installation else None
    if token or installation_id:
        transaction.on_commit(lambda: _revoke(token, installation_id, integration.pk))


@sensitive_variables("token")
def _revoke(token: str, installation_id: int | None, integration_pk: int) -> None:
    try:
        if token:
            oauth.revoke_token(token)
        if installation_id:
            app.revoke_installation_token(installation_id)
    except (GitHubError, requests.RequestException) as error:
        logger.warning(
            "GitHub did not revoke the replaced connection's token of integration %s: %s",
            integration_pk,
            type(error).__name__,
        )
