"""The team's Server-Sent-Events stream: django-eventstream's stream, behind our rules.

Who may read is decided here before any stream opens, with one answer alike for a team that does not
exist and one the user is not in; a user holds a limited number of open streams, each for a limited
time (integrations/live/streams.py), served here or held by Pushpin. Parameters meant for Pushpin
alone and malformed event ids are refused with a 400 instead of escaping as a 500 from the library.
"""

import logging
import re
import time
from functools import partial

import redis
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseBadRequest
from django.utils.crypto import constant_time_compare

from integrations.live import eventstream, streams
from integrations.live.channels import CHECKED_NOW, release_connection
from teams.services import active_member_of, team_id_of

logger = logging.getLogger(__name__)

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

# Those of the next link, which only Pushpin follows.
PROXY_PARAMETERS = (*eventstream.NEXT_LINK_PARAMETERS, streams.END_PARAMETER)
# A team's stream has one channel, so an event id is "<prefix>team-<id>:<n>", well under this; a
# longer one is no id of ours, and the library would parse every part of it.
MAX_LAST_EVENT_ID = 1000
# ASCII digits of a 64-bit count, what the events Redis numbers events with: str.isdecimal() took other
# scripts' digits, and a number of more than 4,300 digits failed the stream after it had started.
EVENT_NUMBER = re.compile(r"[0-9]{1,19}")


def team_events(request, team_slug):
    if problem := malformed(request):
        return HttpResponseBadRequest(f"{problem}\n")
    if request.grip.proxied:
        return proxied_team_events(request, team_slug)
    team_id = readable_team_id(request.user, team_slug)
    # Served here, the stream lasts minutes: its thread must not keep a database connection.
    release_connection()
    if team_id is None:
        return eventstream.sse_error_response("forbidden", eventstream.STREAM_DENIED)
    try:
        claim = streams.claim_stream(request.user.pk)
    except streams.TooManyStreams:
        return too_many_streams()
    except redis.RedisError as error:
        return redis_unavailable(error)
    # The request was checked (malformed) as the library checks it: it cannot refuse it now.
    return eventstream.stream_here(
        request, partial(streams.limited, user_id=request.user.pk, claim=claim), team_id=team_id
    )


def proxied_team_events(request, team_slug):
    """The stream's start, and the GRIP instructions by which Pushpin holds it (django-eventstream's
    own view). Pushpin comes back through the next link it was given, with the user and channel
    django-eventstream signed into `es-meta`, to page through a backlog or to recover events it
    missed: access is checked again then, for the user the link was issued to. The cap and the
    lifetime hold as for a stream served here: the start claims the stream until its end, which
    rides in the next link, and Pushpin comes back by then to be told to close it."""
    follows = eventstream.NEXT_LINK_META in request.GET
    if follows:
        try:
            link_user = eventstream.next_link_user(request)
            ends = streams.end_of(request.GET.get(streams.END_PARAMETER, ""))
        except ValueError:
            return HttpResponseBadRequest("Invalid or expired es-meta.\n")
        member = link_member(link_user, team_slug)
    else:
        member = session_member(request, team_slug)
    if member is None:
        return eventstream.sse_error_response("forbidden", eventstream.STREAM_DENIED)
    user, team_id = member
    # The library checks access once more as it opens the stream: this check stands for that one.
    setattr(user, CHECKED_NOW, (team_id, time.monotonic()))
    request.user = user
    if follows and time.time() >= ends:
        # No hold and no next link: Pushpin closes the stream, and the browser reconnects from its
        # last event id.
        return HttpResponse("", content_type="text/event-stream")
    claim = None
    if not follows:
        ends = streams.proxied_stream_end(time.time())
        try:
            claim = streams.claim_stream(user.pk, until=ends)
        except streams.TooManyStreams:
            return too_many_streams()
        except redis.RedisError as error:
            return redis_unavailable(error)
        request.GET = request.GET.copy()
        request.GET[streams.END_PARAMETER] = streams.signed_end(ends)
    # Pushpin comes back by the stream's end.
    response, held = eventstream.held_by_pushpin(request, back_by=ends, team_id=team_id)
    if claim is not None and not held:  # an error answered in place of the stream
        streams.release_stream(user.pk, claim)
    elif claim is not None:
        response.content = streams.first_words(claim).encode() + response.content
    return response


def link_member(user_id: str, team_slug: str):
    """The user a next link was issued to and the team's id, if they may still read its events; else None."""
    found = active_member_of(user_id, team_slug) if user_id.isdecimal() else None
    return (get_user_model()(pk=int(user_id), is_active=True), found[0]) if found else None


def session_member(request, team_slug):
    """The session's user and the team's id, if that user may read the team's events; None alike for
    no user, no such team and not theirs. A stream's opening through Pushpin is most of what a
    restart storm costs, and loading the user as AuthenticationMiddleware does, then the membership,
    were two reads of the database out of its three: here one, with the checks of Django's get_user
    that apply (the session's backend still configured, and the session's hash the one the user's
    password gives, with the current secret key or a fallback). The one backend that signs users in
    here, ModelBackend, loads a user by primary key, active or not at all, as this read does; django-
    axes' backend only refuses, and no session names it."""
    session = request.session
    try:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
        backend = session[BACKEND_SESSION_KEY]
    except (KeyError, ValidationError):
        return None
    if backend != MODEL_BACKEND or backend not in settings.AUTHENTICATION_BACKENDS:
        return None
    found = active_member_of(user_id, team_slug)
    if found is None:
        return None
    team_id, password = found
    user = get_user_model()(pk=user_id, password=password, is_active=True)
    session_hash = session.get(HASH_SESSION_KEY)
    hashes = (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash())
    if not session_hash or not any(constant_time_compare(session_hash, known) for known in hashes):
        return None
    return user, team_id


def too_many_streams():
    return eventstream.sse_error_response(
        "too-many-streams",
        f"Live updates are off in this tab: you have {settings.EVENTS_MAX_STREAMS_PER_USER} open already. "
        "Close some tabs and reload.",
    )


def redis_unavailable(error):
    # The browser retries a stream answered with an error, and Redis is usually back by then.
    logger.warning("Refused an event stream: the events Redis does not answer (%s)", error)
    return HttpResponse("Live updates are unavailable for a moment.\n", status=503, content_type="text/plain")


def malformed(request) -> str | None:
    if not request.grip.proxied:
        for name in PROXY_PARAMETERS:
            if name in request.GET:
                return f"Unknown parameter {name}."
    for last_event_id in [request.headers.get("Last-Event-ID"), *request.GET.getlist("lastEventId")]:
        if not last_event_id:
            continue
        if len(last_event_id) > MAX_LAST_EVENT_ID:
            return "Last-Event-ID or lastEventId too long."
        try:
            ids = eventstream.parse_last_event_id(last_event_id).values()
        except ValueError:
            ids = None
        if not ids or not all(EVENT_NUMBER.fullmatch(value) for value in ids):
            return "Malformed Last-Event-ID or lastEventId."
    return None


def readable_team_id(user, team_slug) -> int | None:
    """The team's id if the user may read its events; None alike for no such team and not yours."""
    # A deactivated user is refused even with a live session (or a next link issued before).
    if not user.is_authenticated or not user.is_active:
        return None
    team_id = team_id_of(user, team_slug)
    setattr(user, CHECKED_NOW, (team_id, time.monotonic()))
    return team_id
