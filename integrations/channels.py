"""Who may read which event channel: only members of a team read its channel."""

from django.db import connection
from django_eventstream.channelmanager import DefaultChannelManager

from integrations.events import team_channel, team_of_channel
from teams.models import Membership, Team


class TeamChannelManager(DefaultChannelManager):
    def get_channels_for_request(self, request, view_kwargs):
        team_id = Team.objects.filter(slug=view_kwargs.get("team_slug", "")).values_list("pk", flat=True).first()
        _release_connection()
        # An unknown team still gets a channel name, one nobody can read, so the answer is the
        # same forbidden stream-error as for a team one is not a member of.
        return {team_channel(team_id) if team_id else "no-such-team"}

    def can_read_channel(self, user, channel):
        team_id = team_of_channel(channel)
        if team_id is None or user is None or not user.is_authenticated:
            return False
        allowed = Membership.objects.filter(user=user, team_id=team_id).exists()
        _release_connection()
        return allowed

    def is_channel_reliable(self, channel):
        return True


def _release_connection():
    """An open stream waits for minutes in the thread that checked its access: that thread must not
    keep a database connection (1,000 streams would hold 1,000). The next query opens a new one, or
    takes one from the pool."""
    if not connection.in_atomic_block:
        connection.close()
