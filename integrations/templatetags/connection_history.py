"""The team page's history of its GitHub connection, for admins, owned here so that `teams` knows
nothing of the integration (as `sync_banner`)."""

from django import template

from integrations.models import ConnectionChange

register = template.Library()

SHOWN = 10


@register.inclusion_tag("integrations/partials/connection_history.html", takes_context=True)
def connection_history(context):
    request = context["request"]
    if not request.team_membership.is_admin:
        return {"shown": False}
    changes = ConnectionChange.objects.filter(integration__team=request.team).select_related("by")
    return {"shown": True, "connection_changes": changes[:SHOWN]}
