from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from integrations.connections import revoke_after_commit
from integrations.live import eventstream
from integrations.live.channels import team_channel
from integrations.models import GitHubIntegration
from teams.models import Membership


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def close_streams_of_a_member_who_lost_access(sender, instance, **kwargs):
    # After the commit: a removal rolled back kicks nobody, and the check then reads what was committed.
    user, team_id = instance.user, instance.team_id
    transaction.on_commit(lambda: eventstream.channel_permission_changed(user, team_channel(team_id)), robust=True)


@receiver(post_save, sender=get_user_model())
def close_streams_of_a_deactivated_user(sender, instance, **kwargs):
    if instance.is_active:
        return
    team_ids = list(Membership.objects.filter(user=instance).values_list("team_id", flat=True))

    def close_them():
        for team_id in team_ids:
            eventstream.channel_permission_changed(instance, team_channel(team_id))

    transaction.on_commit(close_them, robust=True)


@receiver(post_delete, sender=GitHubIntegration)
def revoke_the_tokens_of_a_removed_connection(sender, instance, **kwargs):
    # However it goes (the admin, a team deleted with it), a removed connection's token stops working
    # at GitHub too, as a replaced one's does.
    revoke_after_commit(instance)
