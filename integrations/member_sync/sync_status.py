"""What a page shows of a team's member sync: the members page's status block and the team page's
banner, both live over the team's event stream. A read for pages (a selector): it writes nothing."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone

from integrations.live.channels import current_event_id
from integrations.member_sync import healing, schedule
from integrations.member_sync.run_events import shown
from integrations.models import GitHubIntegration

RECENT_RUNS = 5


def integration_of(team) -> GitHubIntegration | None:
    # get(), not first(): a team has one integration at most, and first() would order by the primary key
    # for nothing (0.1 ms of SQL compiling on every page that shows the status).
    try:
        return GitHubIntegration.objects.get(team=team)
    except GitHubIntegration.DoesNotExist:
        return None


def status_context(request) -> dict:
    """What the sync status block and the team banner show, and where their stream starts."""
    team = request.team
    # The event id first, the state after: an event sent in between is then replayed to the page
    # (harmless) instead of lost (a page stuck on "Syncing").
    last_event_id = current_event_id(team.pk)
    # Taken before the read, in the events' format: a page that reads this state after its stream
    # was interrupted keeps an event dated later (static/js/member_sync.js).
    shown_at = timezone.now().isoformat()
    integration = integration_of(team)
    # The latest run is the first of the recent ones the members page lists: one statement for both.
    recent_runs = list(integration.member_sync_runs.select_related("requested_by")[:RECENT_RUNS]) if integration else []
    latest_run = recent_runs[0] if recent_runs else None
    shown_now = shown(latest_run, integration.organization_login) if integration else None
    return {
        "team": team,
        "integration": integration,
        "latest_run": latest_run,
        "recent_runs": recent_runs,
        "shown": shown_now,
        # What the page's script reads of the status partial when its stream reopens.
        "shown_json": json.dumps(shown_now),
        "shown_at": shown_at,
        "state_url": reverse("integrations:github_members_sync_progress", args=[team.slug]),
        "is_admin": request.team_membership.is_admin,
        "events_url": reverse("integrations:github_member_events", args=[team.slug]),
        "last_event_id": last_event_id,
        "staying_current": how_members_stay_current(integration) if integration else None,
    }


@dataclass(frozen=True)
class StayingCurrent:
    """How an integration's members are kept current, for the line the members page shows."""

    # Why syncing stopped ("disconnected" or "suspended"), or "" while it goes on.
    stopped: str = ""
    disconnected_reason: str = ""
    # A GitHub App connection receives webhooks; an OAuth one none.
    webhooks: bool = False
    last_webhook_at: datetime | None = None
    # The latest pass that asked GitHub for failed deliveries (integrations/member_sync/healing.py), if healing is on.
    healed: healing.Healed | None = None
    # "24 h", or "" when the scheduled re-sync is off.
    every: str = ""
    next_at: datetime | None = None
    next_is_due: bool = False
    next_within_a_day: bool = True


def how_members_stay_current(integration: GitHubIntegration, now: datetime | None = None) -> StayingCurrent:
    if integration.disconnected_at:
        return StayingCurrent(stopped="disconnected", disconnected_reason=integration.disconnected_reason)
    if integration.installation_suspended_at:
        return StayingCurrent(stopped="suspended")
    app_connection = integration.connection == GitHubIntegration.Connection.APP
    webhooks: dict[str, Any] = {
        "webhooks": app_connection,
        "last_webhook_at": integration.last_webhook_at,
        "healed": healing.latest_healing(integration.installation_id) if app_connection and healing.enabled() else None,
    }
    every = schedule.period()
    if every is None:
        return StayingCurrent(**webhooks)
    now = now or timezone.now()
    # Never scheduled yet: the time the schedule's next pass will give it.
    next_at = integration.next_full_sync_at or schedule.first_full_sync_at(integration.pk, now, every)
    return StayingCurrent(
        **webhooks,
        every=_duration(every),
        next_at=next_at,
        next_is_due=next_at <= now,
        # Within a day, the time alone names one moment.
        next_within_a_day=next_at - now <= timedelta(days=1),
    )


def _duration(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
