"""Who may read which event channel: only members of a team read its channel."""

import time

from django.db import connection
from django_eventstream.channelmanager import DefaultChannelManager

from integrations.events import team_channel, team_of_channel
from teams.models import Membership

# Set on the user object by the view that has just checked the user may read a team's channel.
CHECKED_NOW = "_member_sync_team_checked_now"


class TeamChannelManager(DefaultChannelManager):
    def get_channels_for_request(self, request, view_kwargs):
        # The view has found the team, and checked the user may read it (integrations/views/events.py).
        return {team_channel(view_kwargs["team_id"])}

    def can_read_channel(self, user, channel):
        # Asked again each time a stream reads the storage, so a member removed meanwhile is refused.
        team_id = team_of_channel(channel)
        if team_id is None or user is None or not user.is_authenticated:
            return False
        checked = getattr(user, CHECKED_NOW, None)
        if checked is not None and checked[0] == team_id and time.monotonic() - checked[1] < 5:
            # The view checked this very team a moment ago, in this request (integrations/views/
            # events.py): that check stands for the library's first, and for that one alone.
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
