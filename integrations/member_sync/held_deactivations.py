"""Deactivations a sync held back because they were too many at once
(docs/architecture.md#who-may-deactivate), which an admin confirms or dismisses.

Each is one transaction of conditional UPDATEs: a member a sync has meanwhile seen again is no
longer held and is left alone, and a second click changes nothing. The run that held them is
corrected and published again, so that open pages update.
"""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from integrations.member_sync.member_writes import record_changes_of
from integrations.member_sync.runs import republish
from integrations.models import GitHubIntegration, GitHubMember, MemberChange, MemberSyncRun


def held_members(integration: GitHubIntegration):
    return GitHubMember.objects.filter(integration=integration, is_active=True, deactivation_held_at__isnull=False)


def confirm_held_deactivations(*, integration: GitHubIntegration, by) -> int:
    """Deactivate the held members, as the user `by` decided. Returns how many."""
    return _decide(integration, by=by, deactivate=True)


def dismiss_held_deactivations(*, integration: GitHubIntegration, by) -> int:
    """Keep the held members active and drop their holds, as the user `by` decided. Returns how many."""
    return _decide(integration, by=by, deactivate=False)


def _decide(integration: GitHubIntegration, *, by, deactivate: bool) -> int:
    now = timezone.now()
    left = {"is_active": False, "left_at": now, "updated_at": now} if deactivate else {}
    with transaction.atomic():
        # The latest complete run, which held the members: the decision is recorded as its changes,
        # and its summary corrected.
        run = integration.member_sync_runs.filter(status=MemberSyncRun.Status.COMPLETE).first()
        held = held_members(integration)
        if run is not None:
            kind = MemberChange.Kind.DEACTIVATED if deactivate else MemberChange.Kind.KEPT
            record_changes_of(held, run_id=run.pk, kind=kind, now=now, by_id=by.pk)
        count = held.update(deactivation_held_at=None, **left)
        deactivated = count if deactivate else 0
        if run is None or not (run.members_held or count):
            return count
        MemberSyncRun.objects.filter(pk=run.pk).update(
            members_held=0,
            members_deactivated=F("members_deactivated") + deactivated,
            change_counts=run.count_changes(),
        )
        run.refresh_from_db()
    republish(run)
    return count
