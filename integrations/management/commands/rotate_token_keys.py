from django.core.management.base import BaseCommand, CommandError

from integrations import crypto
from integrations.models import GitHubIntegration, NotificationEndpoint


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored GitHub token, and every notification secret, under the newest key of "
        "TOKEN_ENCRYPTION_KEYS."
    )

    def handle(self, *args, **options):
        integrations = (
            GitHubIntegration.objects.exclude(encrypted_access_token="")
            .select_related("team")
            .only("encrypted_access_token", "team__slug")
        )
        unreadable = self.rotate(integrations, "encrypted_access_token", "token", "a reconnect")
        for integration in unreadable:
            self.stderr.write(f"Cannot read the token of integration {integration.pk} (team {integration.team.slug}).")
        endpoints = NotificationEndpoint.objects.select_related("team").only("encrypted_secret", "team__slug")
        unreadable_secrets = self.rotate(endpoints, "encrypted_secret", "notification secret", "saving a secret")
        for endpoint in unreadable_secrets:
            self.stderr.write(f"Cannot read the notification secret of team {endpoint.team.slug}.")
        if unreadable or unreadable_secrets:
            raise CommandError(
                f"{len(unreadable)} token(s) and {len(unreadable_secrets)} notification secret(s) could not be read "
                "with any key of TOKEN_ENCRYPTION_KEYS: put their key back, or have those teams reconnect GitHub "
                "(and save a new notification secret)."
            )

    def rotate(self, rows, field, what, renewal):
        """Re-encrypt `field` of each row under the newest key; returns the rows no key could read."""
        rotated = changed = 0
        unreadable = []
        model = rows.model
        for row in rows.order_by("pk").iterator():
            read = getattr(row, field)
            try:
                new = crypto.rotate(read)
            except crypto.TokenUnreadable:
                unreadable.append(row)
                continue
            # Only if the value is still the one read: one stored meanwhile (a reconnect, a new secret)
            # is already under the newest key, and the old one must not overwrite it.
            if model.objects.filter(pk=row.pk, **{field: read}).update(**{field: new}):
                rotated += 1
            else:
                changed += 1
        self.stdout.write(f"Re-encrypted {rotated} {what}(s) under the newest key.")
        if changed:
            self.stdout.write(
                f"Left {changed} {what}(s) that changed meanwhile ({renewal} stores under the newest key)."
            )
        return unreadable
