"""The team's Server-Sent-Events stream: django-eventstream's stream, behind our rules.

Who may read is decided here before any stream opens, with one answer for a team that does not
exist and one the user is not in. A user holds a limited number of open streams, each for a limited
time (integrations/streams.py). Parameters meant for a GRIP proxy or malformed event ids are refused
with a 400 instead of escaping as a 500 from inside the library.
"""

import logging

import redis
from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django_eventstream.eventrequest import EventRequest
from django_eventstream.utils import add_default_headers, parse_last_event_id, sse_error_response
from django_eventstream.views import Listener, stream

from integrations import streams
from integrations.channels import release_connection
from teams.models import Membership

logger = logging.getLogger(__name__)

# Parameters django-eventstream reads for a GRIP proxy (signed meta, recovery, paging), which this
# app does not sit behind yet: the library answers some of them with a 500.
PROXY_PARAMETERS = ("es-meta", "recover", "link")


def team_events(request, team_slug):
    if problem := malformed(request):
        return HttpResponseBadRequest(f"{problem}\n")
    team_id = readable_team_id(request.user, team_slug)
    if team_id is None:
        return sse_error_response("forbidden", streams.STREAM_DENIED)
    try:
        claim = streams.claim_stream(request.user.pk)
    except streams.TooManyStreams:
        return sse_error_response(
            "too-many-streams",
            f"Live updates are off in this tab: you have {settings.EVENTS_MAX_STREAMS_PER_USER} open already. "
            "Close some tabs and reload.",
        )
    except redis.RedisError as error:
        # The browser retries a stream answered with an error, and Redis is usually back by then.
        logger.warning("Refused an event stream: the events Redis does not answer (%s)", error)
        return HttpResponse("Live updates are unavailable for a moment.\n", status=503, content_type="text/plain")

    try:
        event_request = EventRequest(request, view_kwargs={"team_id": team_id})
    except EventRequest.Error as error:
        streams.release_stream(request.user.pk, claim)
        return HttpResponseBadRequest(f"{error}\n")
    listener = Listener()
    listener.user_id = request.user.pk
    listener.channels = event_request.channels
    response = StreamingHttpResponse(
        streams.limited(stream(event_request, listener), listener, user_id=request.user.pk, claim=claim),
        content_type="text/event-stream",
    )
    add_default_headers(response, request=request)
    return response


def malformed(request) -> str | None:
    for name in PROXY_PARAMETERS:
        if name in request.GET:
            return f"Unknown parameter {name}."
    for last_event_id in [request.headers.get("Last-Event-ID"), *request.GET.getlist("lastEventId")]:
        if not last_event_id:
            continue
        try:
            ids = parse_last_event_id(last_event_id).values()
        except ValueError:
            ids = None
        if not ids or not all(value.isdecimal() for value in ids):
            return "Malformed Last-Event-ID or lastEventId."
    return None


def readable_team_id(user, team_slug) -> int | None:
    """The team's id if the user may read its events; None alike for no such team and not yours."""
    if not user.is_authenticated:
        return None
    team_id = Membership.objects.filter(user=user, team__slug=team_slug).values_list("team_id", flat=True).first()
    release_connection()
    return team_id
