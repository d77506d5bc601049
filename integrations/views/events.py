"""The team's Server-Sent-Events stream. django-eventstream serves it; integrations.channels decides
who may read it."""

from django.http import HttpResponseBadRequest
from django_eventstream.views import events


def team_events(request, team_slug):
    # es-meta is django-eventstream's signed parameter for a GRIP proxy, which this app does not
    # use; the library lets a malformed one escape as a 500.
    if "es-meta" in request.GET:
        return HttpResponseBadRequest("Unknown parameter es-meta.\n")
    return events(request, team_slug=team_slug)
