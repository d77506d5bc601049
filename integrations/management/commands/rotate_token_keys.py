from django.core.management.base import BaseCommand

from integrations import crypto
from integrations.models import GitHubIntegration


class Command(BaseCommand):
    help = "Re-encrypt every stored GitHub token under the newest key of TOKEN_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        rotated = 0
        for integration in GitHubIntegration.objects.exclude(encrypted_access_token="").only("encrypted_access_token"):
            integration.encrypted_access_token = crypto.rotate(integration.encrypted_access_token)
            integration.save(update_fields=["encrypted_access_token"])
            rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} token(s) under the newest key.")
