from django.db.models.signals import post_delete
from django.dispatch import receiver

from integrations.events import stream_access_changed
from teams.models import Membership


@receiver(post_delete, sender=Membership)
def close_streams_of_a_removed_member(sender, instance, **kwargs):
    stream_access_changed(instance.user, instance.team_id)
