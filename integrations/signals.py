from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from integrations.models import GitHubIntegration
from integrations.onboarding import revoke_after_commit
from integrations.streams import close_streams_if_denied
from teams.models import Membership


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def close_streams_of_a_member_who_lost_access(sender, instance, **kwargs):
    close_streams_if_denied(instance.user, instance.team_id)


@receiver(post_delete, sender=GitHubIntegration)
def revoke_the_tokens_of_a_removed_connection(sender, instance, **kwargs):
    # However it goes (the admin, a team deleted with it), a removed connection's token stops working
    # at GitHub too, as a replaced one's does.
    revoke_after_commit(instance)
