from io import StringIO

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from integrations.crypto import TokenUnreadable
from integrations.models import GitHubIntegration
from tests.base import BaseTestCase

TOKEN = "gho_16C7e42F292c6912E7710c838347Ae178B4a"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def stored_column(integration):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT encrypted_access_token FROM integrations_githubintegration WHERE id = %s", [integration.pk]
        )
        return cursor.fetchone()[0]


class TokenEncryptionTestCase(BaseTestCase):
    def save_token(self):
        self.integration.access_token = TOKEN
        self.integration.save()

    def test_the_column_never_holds_the_token(self):
        self.save_token()
        raw = stored_column(self.integration)
        self.assertTrue(raw)
        self.assertNotIn(TOKEN, raw)
        self.assertNotIn(TOKEN[4:], raw)
        self.assertEqual(GitHubIntegration.objects.get(pk=self.integration.pk).access_token, TOKEN)

    def test_it_encrypts_the_same_token_differently_each_time(self):
        self.save_token()
        first = stored_column(self.integration)
        self.save_token()
        self.assertNotEqual(stored_column(self.integration), first)

    def test_a_token_written_under_an_old_key_is_read_after_a_new_key_is_put_first(self):
        with override_settings(TOKEN_ENCRYPTION_KEYS=[OLD_KEY]):
            self.save_token()
        with override_settings(TOKEN_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
            self.assertEqual(GitHubIntegration.objects.get(pk=self.integration.pk).access_token, TOKEN)

    def test_rotate_token_keys_re_encrypts_under_the_newest_key(self):
        with override_settings(TOKEN_ENCRYPTION_KEYS=[OLD_KEY]):
            self.save_token()
        with override_settings(TOKEN_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
            out = StringIO()
            call_command("rotate_token_keys", stdout=out)
            self.assertIn("Re-encrypted 1 token", out.getvalue())
        with override_settings(TOKEN_ENCRYPTION_KEYS=[NEW_KEY]):
            self.assertEqual(GitHubIntegration.objects.get(pk=self.integration.pk).access_token, TOKEN)

    def test_a_token_under_a_removed_key_is_reported_unreadable(self):
        with override_settings(TOKEN_ENCRYPTION_KEYS=[OLD_KEY]):
            self.save_token()
        with override_settings(TOKEN_ENCRYPTION_KEYS=[NEW_KEY]), self.assertRaises(TokenUnreadable):
            _ = GitHubIntegration.objects.get(pk=self.integration.pk).access_token

    def test_a_malformed_key_is_a_configuration_error(self):
        with override_settings(TOKEN_ENCRYPTION_KEYS=["not-a-fernet-key"]), self.assertRaises(ImproperlyConfigured):
            self.save_token()

    def test_an_empty_token_stores_nothing(self):
        self.integration.access_token = ""
        self.integration.save()
        self.assertEqual(stored_column(self.integration), "")
        self.assertFalse(self.integration.has_access_token)


class AdminHidesTokenTestCase(BaseTestCase):
    def test_the_admin_never_shows_the_token(self):
        self.integration.access_token = TOKEN
        self.integration.save()
        admin_user = type(self.alice).objects.create_superuser("root", password="x")
        self.client.force_login(admin_user)
        for url in [
            "/admin/integrations/githubintegration/",
            f"/admin/integrations/githubintegration/{self.integration.pk}/change/",
        ]:
            response = self.client.get(url)
            self.assertEqual(response.status_code, 200)
            body = response.content.decode()
            self.assertNotIn(TOKEN, body)
            self.assertNotIn(self.integration.encrypted_access_token, body)
