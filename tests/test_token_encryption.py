"""Tokens are encrypted at rest (MultiFernet, newest key first) and never shown in the admin."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection

from integrations import crypto
from integrations.crypto import TokenUnreadable
from integrations.models import GitHubIntegration, NotificationEndpoint

TOKEN = "gho_16C7e42F292c6912E7710c838347Ae178B4a"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
REMOVED_KEY = Fernet.generate_key().decode()
NEWER_TOKEN = "gho_reconnected0000000000000000000000000"


def stored_column(integration):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT encrypted_access_token FROM integrations_githubintegration WHERE id = %s", [integration.pk]
        )
        return cursor.fetchone()[0]


def save_token(integration, token=TOKEN):
    integration.access_token = token
    integration.save()


def reread(integration):
    return GitHubIntegration.objects.get(pk=integration.pk).access_token


def test_the_column_never_holds_the_token(integration):
    save_token(integration)

    raw = stored_column(integration)
    assert raw
    assert TOKEN not in raw
    assert TOKEN[4:] not in raw
    assert reread(integration) == TOKEN


def test_it_encrypts_the_same_token_differently_each_time(integration):
    save_token(integration)
    first = stored_column(integration)

    save_token(integration)

    assert stored_column(integration) != first


def test_a_token_written_under_an_old_key_is_read_after_a_new_key_is_put_first(integration, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    save_token(integration)

    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    assert reread(integration) == TOKEN


def test_rotate_token_keys_re_encrypts_under_the_newest_key(integration, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    save_token(integration)
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    out = StringIO()

    call_command("rotate_token_keys", stdout=out)

    assert "Re-encrypted 1 token" in out.getvalue()
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY]
    assert reread(integration) == TOKEN


def test_rotation_leaves_a_token_reconnected_meanwhile_as_the_newer_one(integration, settings, monkeypatch):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    save_token(integration)
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    rotate = crypto.rotate

    def rotate_while_the_team_reconnects(ciphertext):
        # The command has read the old token; the team reconnects before it writes the rotated one.
        rotated = rotate(ciphertext)
        save_token(GitHubIntegration.objects.get(pk=integration.pk), NEWER_TOKEN)
        return rotated

    monkeypatch.setattr(crypto, "rotate", rotate_while_the_team_reconnects)
    out = StringIO()

    call_command("rotate_token_keys", stdout=out)

    assert reread(integration) == NEWER_TOKEN
    assert "Re-encrypted 0 token" in out.getvalue()
    assert "Left 1 token(s) that changed meanwhile" in out.getvalue()


def test_rotation_reports_an_unreadable_token_and_rotates_the_others(integration, other_team, charlie, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [REMOVED_KEY]
    # Stored first, so that the command meets it before the readable one.
    lost = GitHubIntegration(team=other_team, organization_login="globex", connected_by=charlie)
    save_token(lost)
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    save_token(integration)
    unreadable_column = stored_column(lost)
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="1 token"):
        call_command("rotate_token_keys", stdout=out, stderr=err)

    assert f"integration {lost.pk} (team globex)" in err.getvalue()
    assert "acme" not in err.getvalue()
    assert TOKEN not in out.getvalue() + err.getvalue()
    assert unreadable_column not in out.getvalue() + err.getvalue()
    assert "Re-encrypted 1 token" in out.getvalue()
    assert stored_column(lost) == unreadable_column
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY]
    assert reread(integration) == TOKEN


def test_a_token_under_a_removed_key_is_reported_unreadable(integration, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    save_token(integration)
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY]

    with pytest.raises(TokenUnreadable):
        reread(integration)


def test_a_malformed_key_is_a_configuration_error(integration, settings):
    settings.TOKEN_ENCRYPTION_KEYS = ["not-a-fernet-key"]

    with pytest.raises(ImproperlyConfigured):
        save_token(integration)


def test_an_empty_token_stores_nothing(integration):
    save_token(integration, "")

    assert stored_column(integration) == ""
    assert not integration.has_access_token


def test_the_admin_never_shows_the_token(integration, client, django_user_model):
    save_token(integration)
    client.force_login(django_user_model.objects.create_superuser("root", password="x"))

    for url in [
        "/admin/integrations/githubintegration/",
        f"/admin/integrations/githubintegration/{integration.pk}/change/",
    ]:
        response = client.get(url)
        assert response.status_code == 200
        assert TOKEN not in response.content.decode()
        assert integration.encrypted_access_token not in response.content.decode()


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def endpoint_for(team):
    endpoint = NotificationEndpoint(team=team, url=f"https://hooks.example.com/{team.slug}")
    endpoint.secret = SECRET
    endpoint.save()
    return endpoint


def test_rotation_re_encrypts_notification_secrets_too_and_names_an_unreadable_one(team, other_team, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [REMOVED_KEY]
    endpoint_for(other_team)
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    kept = endpoint_for(team)
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="0 token.* and 1 notification secret"):
        call_command("rotate_token_keys", stdout=out, stderr=err)

    assert "Re-encrypted 1 notification secret(s) under the newest key." in out.getvalue()
    assert err.getvalue() == "Cannot read the notification secret of team globex.\n"
    assert SECRET not in out.getvalue() + err.getvalue()
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY]
    assert NotificationEndpoint.objects.get(pk=kept.pk).secret == SECRET
