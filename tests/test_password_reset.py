"""Password reset mails a link: its pages exist, and the login page offers them, only when a mail
server is configured (EMAIL_HOST). The URLs are read once at start, hence a fresh process each."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each test runs manage.py in a process of its own.
pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
from django.test import Client

client = Client(HTTP_HOST="localhost")
login_page = client.get("/accounts/login/").content.decode()
print(client.get("/accounts/password_reset/").status_code, "Forgot your password?" in login_page, sep="|")
"""


def password_reset_with(**environment):
    """(status of the password-reset page, whether the login page links to it) in a new process."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("EMAIL_")}
    # Plain HTTP (tests/settings.py) with DEBUG off is allowed only for the loopback names.
    env.update(environment, ALLOWED_HOSTS="localhost")
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    status, linked = result.stdout.strip().splitlines()[-1].split("|")
    return int(status), linked == "True"


def test_password_reset_is_off_without_an_email_backend():
    assert password_reset_with() == (404, False)


def test_password_reset_is_on_with_a_mail_server():
    assert password_reset_with(EMAIL_HOST="smtp.example.com") == (200, True)
