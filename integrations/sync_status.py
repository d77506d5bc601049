"""What a page shows of a team's member sync: the status block of the members page and the team
page's banner, both live over the team's event stream. A read for pages (a selector): it writes
nothing."""

from django.urls import reverse

from integrations.events import current_event_id
from integrations.models import GitHubIntegration


def integration_of(team) -> GitHubIntegration | None:
    return GitHubIntegration.objects.filter(team=team).first()


def status_context(request) -> dict:
    """What the sync status block and the team banner show, and where their stream starts."""
    team = request.team
    # The event id first, the state after: an event sent in between is then replayed to the page
    # (harmless) instead of lost (a page stuck on "Syncing").
    last_event_id = current_event_id(team.pk)
    integration = integration_of(team)
    latest_run = integration.member_sync_runs.select_related("requested_by").first() if integration else None
    return {
        "team": team,
        "integration": integration,
        "latest_run": latest_run,
        "is_admin": request.team_membership.is_admin,
        "events_url": reverse("integrations:github_member_events", args=[team.slug]),
        "last_event_id": last_event_id,
    }
