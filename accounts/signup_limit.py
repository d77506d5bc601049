"""The sign-up attempts a client address may make: SIGNUP_ATTEMPTS_PER_HOUR, counted in the shared
cache over fixed one-hour windows. Failed ones count too: a script probes for usernames with them."""

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 3600


def allow_signup_attempt(request) -> bool:
    """Count this attempt; False once its address has used up its attempts for the window."""
    # The address as django-axes sees it for logins (REMOTE_ADDR, see AXES_* in the settings).
    key = f"signup-attempts:{get_client_ip_address(request)}"
    cache.add(key, 0, timeout=WINDOW_SECONDS)
    try:
        attempts = cache.incr(key)
    except ValueError:  # the window ended between add and incr
        cache.add(key, 1, timeout=WINDOW_SECONDS)
        attempts = 1
    return attempts <= settings.SIGNUP_ATTEMPTS_PER_HOUR
