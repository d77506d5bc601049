"""The test suite's settings: config.settings with DEBUG off, kept apart from anything else on this
machine's Redis (another test run, `make run`) by a Dramatiq namespace and an event channel prefix
of its own, with a token key of its own and plain HTTP (the test client and the processes the tests
start speak it), and no Sentry. Those processes inherit all of it through the environment."""

import os

_RUN = f"test{os.getpid()}"
if "PYTEST_XDIST_WORKER" in os.environ:
    # An xdist worker inherits the controller's environment, these included: each worker is a test
    # run of its own, and the processes it starts inherit its names (they import these settings too).
    _RUN = f"test{os.environ['PYTEST_XDIST_TESTRUNUID'][:8]}{os.environ['PYTEST_XDIST_WORKER']}"
    os.environ.update(DRAMATIQ_NAMESPACE=_RUN, EVENTS_CHANNEL_PREFIX=f"{_RUN}-")
os.environ.setdefault("DRAMATIQ_NAMESPACE", _RUN)
os.environ.setdefault("EVENTS_CHANNEL_PREFIX", f"{_RUN}-")
os.environ.setdefault("TOKEN_ENCRYPTION_KEYS", "dGVzdHMtb25seS10b2tlbi1rZXktMzItYnl0ZXMtLi4=")
os.environ.setdefault("HTTPS_ONLY", "0")
# No error reporting from tests, nor from the processes they start: tests/test_sentry.py starts its own.
os.environ.pop("SENTRY_DSN", None)

from config.settings import *  # noqa: E402, F403

# Pages render, and static files are served, without a collectstatic: the manifest storage of
# DEBUG off is tested on its own (tests/test_production_settings.py).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# PBKDF2 at a few iterations: a test's login checks its password in a millisecond rather than a
# second. The hashes are still pbkdf2_sha256, with their iterations inside, so a process started
# with production settings checks them too (tests/test_production_browser.py logs in with one).
PASSWORD_HASHERS = ["tests.hashers.QuickPBKDF2PasswordHasher"]
