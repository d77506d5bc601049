"""A team's event channel: its name, its current event id, and who may read it: the team's members."""

import logging
import time

from django.conf import settings
from django.db import connection

from integrations.live import eventstream
from teams.models import Membership

logger = logging.getLogger(__name__)


def team_channel(team_id: int) -> str:
    # By id, not slug: a slug freed by a deleted team and taken by a new one must not replay the
    # old team's events to the new team's members.
    return f"{settings.EVENTS_CHANNEL_PREFIX}team-{team_id}"


def team_of_channel(channel: str) -> int | None:
    """The team id a channel name stands for, or None if it names no team."""
    prefix = f"{settings.EVENTS_CHANNEL_PREFIX}team-"
    number = channel.removeprefix(prefix)
    if number == channel or not number.isdecimal():
        return None
    return int(number)


def current_event_id(team_id: int) -> str:
    """The channel's last event id, rendered into pages so their EventSource starts from there and
    misses nothing sent between the render and the connect (docs/architecture.md#library-pitfalls)."""
    try:
        return eventstream.get_current_event_id([team_channel(team_id)])
    except Exception:
        logger.exception("Could not read the current event id of team %s", team_id)
        return ""


# Set on the user object by the view that has just checked the user may read a team's channel.
CHECKED_NOW = "_member_sync_team_checked_now"


class TeamChannelManager:
    """django-eventstream's channel manager (EVENTSTREAM_CHANNELMANAGER_CLASS), as its ChannelManagerBase."""

    def get_channels_for_request(self, request, view_kwargs):
        # The view has found the team, and checked the user may read it (integrations/live/team_events.py).
        return {team_channel(view_kwargs["team_id"])}

    def can_read_channel(self, user, channel):
        # Asked again each time a stream reads the storage, so a member removed meanwhile is refused.
        team_id = team_of_channel(channel)
        if team_id is None or user is None or not user.is_authenticated:
            return False
        checked = getattr(user, CHECKED_NOW, None)
        if checked is not None and checked[0] == team_id and time.monotonic() - checked[1] < 5:
            # The view checked this very team a moment ago, in this request (integrations/live/
            # team_events.py): that check stands for the library's first, and for that one alone.
            setattr(user, CHECKED_NOW, None)
            return True
        # The user's is_active read again too: the user object is the one the stream started with.
        allowed = Membership.objects.filter(user=user, user__is_active=True, team_id=team_id).exists()
        release_connection()
        return allowed

    def is_channel_reliable(self, channel):
        return True


def release_connection():
    """An open stream waits for minutes in the thread that checked its access: that thread must not
    keep a database connection (1,000 streams would hold 1,000). The next query opens a new one, or
    takes one from the pool."""
    if not connection.in_atomic_block:
        connection.close()
