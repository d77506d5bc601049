"""Mail to a team's admins when one of them must act: deactivations held for a decision, a connection
that stopped working, the third failed run in a row. Sent by a Dramatiq actor through Django's mail
settings (SMTP with EMAIL_HOST; the console under DEBUG without it), one message per admin with an
address, so that no request and no run waits on a mail server. Never to a plain member."""

import logging

import dramatiq
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.urls import reverse

from integrations import words
from integrations.models import GitHubIntegration, MemberSyncRun
from teams.models import Membership

logger = logging.getLogger(__name__)

HELD = "held"
BROKEN = "broken"
FAILING = "failing"
# The admins are mailed once when this many runs in a row have failed (not again at the next failures).
FAILURES_MAILED = 3


@dramatiq.actor(queue_name="notifications", max_retries=5, min_backoff=10_000, max_backoff=600_000, time_limit=60_000)
def mail_team_admins(integration_id: int, reason: str, run_id: int | None, error: str, kind: str) -> None:
    integration = GitHubIntegration.objects.select_related("team").filter(pk=integration_id).first()
    if integration is None:
        return
    run = MemberSyncRun.objects.filter(pk=run_id).first() if run_id is not None else None
    subject, body = _message(integration, reason, run, error=error, kind=kind)
    addresses = list(
        Membership.objects.filter(team=integration.team, role=Membership.Role.ADMIN, user__is_active=True)
        .exclude(user__email="")
        .order_by("user__email")
        .values_list("user__email", flat=True)
        .distinct()
    )
    footer = words.MAIL_FOOTER.format(team=integration.team.name)
    with get_connection() as connection:
        messages = [EmailMessage(subject, body + footer, to=[address], connection=connection) for address in addresses]
        sent = connection.send_messages(messages) if messages else 0
    logger.info("Mailed %d admin(s) of team %s (%s)", sent or 0, integration.team_id, reason)


def _message(
    integration: GitHubIntegration, reason: str, run: MemberSyncRun | None, *, error: str, kind: str
) -> tuple[str, str]:
    team, organization = integration.team, integration.organization_login
    members_url = settings.SITE_URL + reverse("integrations:github_members", kwargs={"team_slug": team.slug})
    run_url = members_url
    if run is not None:
        path = reverse("integrations:github_member_sync_run", kwargs={"team_slug": team.slug, "run_id": run.pk})
        run_url = settings.SITE_URL + path
    remedy = words.REMEDIES.get(kind, "")
    if reason == HELD:
        held = run.members_held if run is not None else 0
        subject = words.MAIL_HELD_SUBJECT.format(team=team.name, held=held)
        body = words.MAIL_HELD.format(organization=organization, held=held, members_url=members_url, run_url=run_url)
    elif reason == BROKEN:
        subject = words.MAIL_BROKEN_SUBJECT.format(team=team.name)
        body = words.MAIL_BROKEN.format(organization=organization, error=error, remedy=remedy, url=run_url)
    else:
        subject = words.MAIL_FAILING_SUBJECT.format(team=team.name, streak=FAILURES_MAILED, organization=organization)
        body = words.MAIL_FAILING.format(
            streak=FAILURES_MAILED, organization=organization, error=error, remedy=remedy, url=run_url
        )
    return subject, body
