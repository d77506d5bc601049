from django.core.management.base import BaseCommand, CommandError

from integrations import crypto
from integrations.models import GitHubIntegration


class Command(BaseCommand):
    help = "Re-encrypt every stored GitHub token under the newest key of TOKEN_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        rotated = changed = 0
        unreadable = []
        integrations = (
            GitHubIntegration.objects.exclude(encrypted_access_token="")
            .select_related("team")
            .only("encrypted_access_token", "team__slug")
            .order_by("pk")
        )
        for integration in integrations.iterator():
            read = integration.encrypted_access_token
            try:
                new = crypto.rotate(read)
            except crypto.TokenUnreadable:
                unreadable.append(integration)
                continue
            # Only if the token is still the one read: a team reconnecting meanwhile stored a newer
            # token, already under the newest key, which the old one must not overwrite.
            if GitHubIntegration.objects.filter(pk=integration.pk, encrypted_access_token=read).update(
                encrypted_access_token=new
            ):
                rotated += 1
            else:
                changed += 1
        self.stdout.write(f"Re-encrypted {rotated} token(s) under the newest key.")
        if changed:
            self.stdout.write(
                f"Left {changed} token(s) that changed meanwhile (a reconnect stores under the newest key)."
            )
        if unreadable:
            for integration in unreadable:
                self.stderr.write(
                    f"Cannot read the token of integration {integration.pk} (team {integration.team.slug})."
                )
            raise CommandError(
                f"{len(unreadable)} token(s) could not be read with any key of TOKEN_ENCRYPTION_KEYS: "
                "put their key back, or have those teams reconnect GitHub."
            )
