"""Deactivations a sync held back because they were too many at once
(docs/architecture.md#who-may-deactivate), which an admin confirms or dismisses.

Each is one transaction of conditional UPDATEs: a member a sync has meanwhile seen again is no
longer held and is left alone, and a second click changes nothing. The run that held them is
corrected and published again, so that open pages update.
"""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from integrations.member_sync.runs import republish
from integrations.models import GitHubIntegration, GitHubMember, MemberSyncRun


def held_members(integration: GitHubIntegration):
    return GitHubMember.objects.filter(integration=integration, is_active=True, deactivation_held_at__isnull=False)


def confirm_held_deactivations(*, integration: GitHubIntegration) -> int:
    """Deactivate the held members. Returns how many."""
    return _decide(integration, deactivate=True)


def dismiss_held_deactivations(*, integration: GitHubIntegration) -> int:
    """Keep the held members active and drop their holds. Returns how many."""
    return _decide(integration, deactivate=False)


def _decide(integration: GitHubIntegration, *, deactivate: bool) -> int:
    now = timezone.now()
    left = {"is_active": False, "left_at": now, "updated_at": now} if deactivate else {}
    with transaction.atomic():
        count = held_members(integration).update(deactivation_held_at=None, **left)
        # The latest complete run, which held the members, now holds none: its summary says so.
        run = integration.member_sync_runs.filter(status=MemberSyncRun.Status.COMPLETE).first()
        deactivated = count if deactivate else 0
        if run is None or not (run.members_held or deactivated):
            return count
        MemberSyncRun.objects.filter(pk=run.pk).update(
            members_held=0, members_deactivated=F("members_deactivated") + deactivated
        )
        run.refresh_from_db()
    republish(run)
    return count
