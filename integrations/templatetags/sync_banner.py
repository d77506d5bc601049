"""The team page's banner of the member sync, owned here so that `teams` knows nothing of the
integration: the team page only says where it goes."""

from django import template

from integrations.member_sync.sync_status import status_context

register = template.Library()


@register.inclusion_tag("integrations/partials/member_sync_banner.html", takes_context=True)
def member_sync_banner(context):
    return status_context(context["request"])
