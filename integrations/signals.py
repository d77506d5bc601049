from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from integrations.streams import close_streams_if_denied
from teams.models import Membership


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def close_streams_of_a_member_who_lost_access(sender, instance, **kwargs):
    close_streams_if_denied(instance.user, instance.team_id)
