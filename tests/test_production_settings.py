"""With DEBUG off the settings are the deployment (docs/interfaces.md#environment): `check --deploy`
finds nothing to warn of, and the app refuses to start without its secrets, naming the variable."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Each test runs manage.py in a process of its own.
pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k3J9x-Qw7!vR2mZp8sLt4yBn6cHd0fGj5aUe1iOo-XrWq9TzSv",
    "TOKEN_ENCRYPTION_KEYS": "dGVzdHMtb25seS10b2tlbi1rZXktMzItYnl0ZXMtLi4=",
    "EVENTS_CHANNEL_PREFIX": "member-sync-",
    "ALLOWED_HOSTS": "members.example.com",
}


def manage(*args, **overrides):
    """`python manage.py ARGS` in production settings, with the overrides (None unsets a variable)."""
    environment = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings", **PRODUCTION}
    environment.update(overrides)
    environment = {name: value for name, value in environment.items() if value is not None}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_check_deploy_reports_nothing_in_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("hosts", ["127.0.0.1", "localhost,127.0.0.1,::1,[::1]"])
def test_a_plain_http_trial_is_allowed_on_request_on_this_machine(hosts):
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECURE_SSL_REDIRECT)",
        HTTPS_ONLY="0",
        ALLOWED_HOSTS=hosts,
    )

    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


@pytest.mark.parametrize("hosts", ["members.example.com", "127.0.0.1,members.example.com", "*", "10.0.0.7"])
def test_plain_http_is_refused_for_a_host_other_than_this_machine(hosts):
    # Over plain HTTP, session cookies and passwords cross the network in the clear: only a trial
    # reached on the loopback interface may go without HTTPS.
    result = manage("check", HTTPS_ONLY="0", ALLOWED_HOSTS=hosts)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "HTTPS_ONLY" in result.stderr


def test_plain_http_on_any_host_is_allowed_in_debug():
    assert manage("check", HTTPS_ONLY="0", DEBUG="1").returncode == 0


def last_line(result):
    return result.stdout.strip().splitlines()[-1].split()


NOTIFICATION_SETTINGS = (
    "from django.conf import settings; "
    "print(settings.NOTIFICATIONS_ALLOW_PRIVATE_URLS, settings.SITE_URL, settings.EMAIL_BACKEND.rsplit('.', 2)[-2])"
)


def test_notifications_go_to_public_https_urls_and_link_the_first_allowed_host_in_production():
    result = manage("shell", "-c", NOTIFICATION_SETTINGS)

    assert last_line(result) == ["False", "https://members.example.com", "dummy"], result.stderr
    assert last_line(manage("shell", "-c", NOTIFICATION_SETTINGS, EMAIL_HOST="smtp.example.com"))[-1] == "smtp"


def test_under_debug_notifications_may_go_to_this_machine_and_mail_is_printed():
    result = manage("shell", "-c", NOTIFICATION_SETTINGS, DEBUG="1", PORT="8123")

    assert last_line(result) == ["True", "http://127.0.0.1:8123", "console"], result.stderr


def test_a_site_url_that_is_no_http_url_stops_the_start():
    result = manage("check", SITE_URL="members.example.com")

    assert result.returncode != 0
    assert "SITE_URL" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"TOKEN_ENCRYPTION_KEYS": None}, "TOKEN_ENCRYPTION_KEYS"),
        ({"TOKEN_ENCRYPTION_KEYS": "not-a-fernet-key"}, "TOKEN_ENCRYPTION_KEYS"),
        ({"EVENTS_CHANNEL_PREFIX": None}, "EVENTS_REDIS_URL"),
        ({"EVENTS_CHANNEL_PREFIX": "member-sync:"}, "EVENTS_CHANNEL_PREFIX"),
        ({"GRIP_URL": "http://127.0.0.1:5561/"}, "GRIP_URL"),
        # Each of these held "key=" somewhere, which was all that was checked.
        ({"GRIP_URL": "http://127.0.0.1:5561/?key="}, "GRIP_URL"),
        ({"GRIP_URL": "http://127.0.0.1:5561/?nokey=secret"}, "GRIP_URL"),
        ({"GRIP_URL": "http://127.0.0.1:5561/key=secret"}, "GRIP_URL"),
        ({"GRIP_URL": "ftp://127.0.0.1:5561/?key=secret"}, "GRIP_URL"),
        ({"GRIP_URL": "127.0.0.1:5561/?key=secret"}, "GRIP_URL"),
        ({"GRIP_URL": "http:///?key=secret"}, "GRIP_URL"),
        ({"GRIP_URL": "http://127.0.0.1:5561/?key=secret,http://127.0.0.1:5562/"}, "URL 2 of GRIP_URL"),
        ({"METRICS_ALLOWED_IPS": "10.0.0.0/8,prometheus.internal"}, "METRICS_ALLOWED_IPS"),
        ({"METRICS_ALLOWED_IPS": "10.0.0.300"}, "METRICS_ALLOWED_IPS"),
    ],
)
def test_it_refuses_to_start_without_its_secrets_or_with_a_bad_value_naming_the_variable(overrides, named):
    result = manage("check", **overrides)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        {"GRIP_URL": "http://127.0.0.1:5561/?key=secret"},
        {"GRIP_URL": "https://pushpin.internal/?iss=member-sync&key=base64:c2VjcmV0"},
        {"GRIP_URL": "http://10.0.0.5:5561/?key=secret,http://10.0.0.6:5561/?key=secret"},
        {"METRICS_ALLOWED_IPS": "10.0.0.0/8, 192.0.2.7,2001:db8::/32"},
    ],
)
def test_well_formed_values_start(overrides):
    result = manage("check", **overrides)

    assert result.returncode == 0, result.stderr


def test_events_on_a_redis_of_their_own_need_no_prefix():
    result = manage("check", EVENTS_CHANNEL_PREFIX=None, EVENTS_REDIS_URL="redis://events.internal:6379/0")

    assert result.returncode == 0, result.stderr


SERVE_SCRIPT = """
from django.templatetags.static import static
from django.test import Client

url = static("js/member_sync.js")
response = Client(HTTP_HOST="localhost").get(url, headers={"accept-encoding": "gzip"})
headers = response.headers
print(url, response.status_code, headers.get("Cache-Control"), headers.get("Content-Encoding"), sep="|")
"""


def test_the_app_serves_its_own_static_files_hashed_compressed_and_cached(tmp_path):
    static_root = {"STATIC_ROOT": str(tmp_path), "HTTPS_ONLY": "0", "ALLOWED_HOSTS": "localhost"}
    collected = manage("collectstatic", "--noinput", "-v", "0", **static_root)
    assert collected.returncode == 0, collected.stderr

    served = manage("shell", "-c", SERVE_SCRIPT, **static_root)

    url, status, cache_control, encoding = served.stdout.strip().splitlines()[-1].split("|")
    assert re.fullmatch(r"/static/js/member_sync\.[0-9a-f]{12}\.js", url), served.stderr
    assert status == "200"
    assert "max-age=315360000" in cache_control
    assert encoding == "gzip"


def test_pages_allow_only_the_apps_own_scripts_and_styles():
    # The home page redirects an anonymous visitor without rendering: no collected static files needed.
    served = manage(
        "shell",
        "-c",
        "from django.test import Client; "
        "print(Client(HTTP_HOST='localhost').get('/').headers['Content-Security-Policy'])",
        HTTPS_ONLY="0",
        ALLOWED_HOSTS="localhost",
    )

    policy = dict(directive.split(" ", 1) for directive in served.stdout.strip().splitlines()[-1].split("; "))
    assert policy["script-src"] == "'self'", served.stderr
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in served.stdout


INSTALLED_SIMULATOR = "from django.conf import settings; print('github_simulator' in settings.INSTALLED_APPS)"


def test_the_simulator_is_not_installed_in_production():
    result = manage("shell", "-c", INSTALLED_SIMULATOR)

    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_the_simulator_is_installed_in_debug():
    result = manage("shell", "-c", INSTALLED_SIMULATOR, DEBUG="1")

    assert result.stdout.strip().splitlines()[-1] == "True", result.stderr
