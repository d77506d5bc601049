"""What is announced, and to whom: the end of a run and a connection that broke become a delivery
to the team's endpoint, and mail to its admins when one of them must act
(docs/interfaces.md#notifications). Both leave after the commit, from the worker: nothing here waits
on a receiver or a mail server.

The member sync calls `run_ended` from every run's last transition, and `connection_broken` when a
webhook says the App was uninstalled or suspended, or the organization deleted. A team without an
endpoint costs one indexed read a run (two for a run that failed, which counts the failures in a row).
"""

import json
import logging
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from integrations.models import GitHubIntegration, MemberSyncRun, NotificationDelivery, NotificationEndpoint
from integrations.notifications import admin_mail
from integrations.notifications.deliveries import TEST, attempt_now, send_after_commit
from integrations.words import ErrorKind
from teams.models import Membership

logger = logging.getLogger(__name__)

Status = MemberSyncRun.Status

COMPLETED = "member_sync.completed"
HELD = "member_sync.held"
FAILED = "member_sync.failed"
BROKEN = "connection.broken"
TYPES = (COMPLETED, HELD, FAILED, BROKEN, TEST)

# A run failing for one of these says the connection itself stopped working: an admin must reconnect,
# reinstall, or have an owner unsuspend the App.
BROKEN_KINDS = {ErrorKind.CREDENTIALS, ErrorKind.INSTALLATION, ErrorKind.SUSPENDED}
FAILURES_MAILED = admin_mail.FAILURES_MAILED


def run_ended(run: MemberSyncRun) -> None:
    """Announce a run that has just ended (complete or error): never raises, as a notification
    must not change how a run ends."""
    try:
        _announce_run(run)
    except Exception:
        logger.exception("Could not queue the notifications of member sync run %s", run.pk)


def connection_broken(integration: GitHubIntegration, *, kind: str, reason: str) -> None:
    """Announce a connection GitHub said is gone or suspended (by webhook), with no run of its own."""
    try:
        endpoint = _endpoint_of(integration.team_id)
        if endpoint is not None:
            _queue(endpoint, BROKEN, _data(endpoint.team.slug, integration.organization_login, error_kind=kind))
        _mail_after_commit(integration, admin_mail.BROKEN, error=reason, kind=kind)
    except Exception:
        logger.exception("Could not queue the notifications of integration %s's broken connection", integration.pk)


def _announce_run(run: MemberSyncRun) -> None:
    integration = run.integration
    event, mail = _what_to_say(run)
    if event is None:
        return
    endpoint = _endpoint_of(integration.team_id)
    if endpoint is not None:
        _queue(endpoint, event, run_data(run, endpoint.team.slug), run=run)
    if mail is not None:
        _mail_after_commit(integration, mail, run=run, error=run.error, kind=run.error_kind)


def _what_to_say(run: MemberSyncRun) -> tuple[str | None, str | None]:
    """(the event's type, the admins' mail or None) for a run that ended; (None, None): nothing."""
    if run.status == Status.COMPLETE:
        if run.members_held:
            return HELD, admin_mail.HELD
        if run.trigger == MemberSyncRun.Trigger.WEBHOOK and not _changed_anything(run):
            return None, None  # a webhook that changed nobody pages nobody
        return COMPLETED, None
    if run.status != Status.ERROR:
        return None, None
    # The runs that ended before this one, latest first: enough to count a streak of FAILURES_MAILED.
    earlier = list(
        MemberSyncRun.objects.filter(
            integration_id=run.integration_id, pk__lt=run.pk, status__in=[Status.COMPLETE, Status.ERROR]
        )
        .order_by("-pk")
        .values_list("status", "error_kind")[:FAILURES_MAILED]
    )
    # Broken once, when it breaks: the next runs that fail the same way are plain failures.
    if run.error_kind in BROKEN_KINDS and (not earlier or earlier[0] != (Status.ERROR, run.error_kind)):
        return BROKEN, admin_mail.BROKEN
    failed_before = next((n for n, (status, _) in enumerate(earlier) if status != Status.ERROR), len(earlier))
    return FAILED, admin_mail.FAILING if failed_before == FAILURES_MAILED - 1 else None


def _changed_anything(run: MemberSyncRun) -> bool:
    counts = run.change_counts or {}
    return bool(any(counts.values()) or run.members_created or run.members_updated or run.members_deactivated)


def _endpoint_of(team_id: int) -> NotificationEndpoint | None:
    return NotificationEndpoint.objects.filter(team_id=team_id).select_related("team").first()


def absolute_url(path: str) -> str:
    return settings.SITE_URL + path


def run_data(run: MemberSyncRun | None, team_slug: str, organization: str | None = None) -> dict:
    """The `data` of a run's event (and of a test, from the latest run, if any)."""
    if run is None:
        return _data(team_slug, organization)
    failed = run.status == Status.ERROR
    return _data(
        team_slug,
        run.integration.organization_login,
        run=run.pk,
        status=run.status,
        error_kind=(run.error_kind or None) if failed else None,
        changes=dict(run.change_counts or {}),
    )


def _data(
    team_slug: str,
    organization: str | None,
    *,
    run: int | None = None,
    status: str | None = None,
    error_kind: str | None = None,
    changes: dict | None = None,
) -> dict:
    if run is not None:
        url = reverse("integrations:github_member_sync_run", kwargs={"team_slug": team_slug, "run_id": run})
    else:
        url = reverse("integrations:github_members", kwargs={"team_slug": team_slug})
    return {
        "team": team_slug,
        "organization": organization,
        "run": run,
        "status": status,
        "error_kind": error_kind,
        "changes": changes or {},
        "url": absolute_url(url),
    }


def body_of(event: str, data: dict, at: datetime) -> str:
    """The JSON body, as sent and signed: {"type", "timestamp", "data"}."""
    timestamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event, "timestamp": timestamp, "data": data}, separators=(",", ":"))


def new_delivery(
    endpoint: NotificationEndpoint, event: str, data: dict, *, run: MemberSyncRun | None = None
) -> NotificationDelivery:
    now = timezone.now()
    return NotificationDelivery.objects.create(
        endpoint=endpoint,
        message_id=f"msg_{uuid.uuid4().hex}",
        type=event,
        body=body_of(event, data, now),
        run=run,
        created_at=now,
        next_attempt_at=now,
    )


def _queue(endpoint: NotificationEndpoint, event: str, data: dict, *, run: MemberSyncRun | None = None) -> None:
    send_after_commit(new_delivery(endpoint, event, data, run=run))


def _mail_after_commit(
    integration: GitHubIntegration, reason: str, *, run: MemberSyncRun | None = None, error: str, kind: str
) -> None:
    """Mail the team's admins from the worker, after the commit, if any of them has an address."""
    admins = Membership.objects.filter(team_id=integration.team_id, role=Membership.Role.ADMIN, user__is_active=True)
    if not admins.exclude(user__email="").exists():
        return
    arguments = (integration.pk, reason, run.pk if run else None, error, kind)

    def send() -> None:
        try:
            admin_mail.mail_team_admins.send(*arguments)
        except Exception:
            logger.exception("Could not queue the mail to the admins of integration %s", integration.pk)

    transaction.on_commit(send, robust=True)


def send_test(endpoint: NotificationEndpoint) -> NotificationDelivery:
    """One message of type `test`, its data from the team's latest ended run (or none), sent now in
    this process, once, without retries: the caller shows how the receiver answered."""
    integration = GitHubIntegration.objects.filter(team_id=endpoint.team_id).first()
    run = None
    if integration is not None:
        ended = MemberSyncRun.objects.filter(integration=integration, status__in=[Status.COMPLETE, Status.ERROR])
        run = ended.select_related("integration").first()
    organization = integration.organization_login if integration is not None else None
    return attempt_now(new_delivery(endpoint, TEST, run_data(run, endpoint.team.slug, organization), run=run))
