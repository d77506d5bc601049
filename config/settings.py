"""Settings, read from the environment variables listed in docs/deploy.md#2-environment-variables."""

import ipaddress
import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dj_database_url
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from gripcontrol import parse_grip_uri

from integrations.member_sync import run_logging

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=""):
    """The variable's value; an empty one counts as unset."""
    return os.environ.get(name) or default


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=1 for local development).")
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")

INSTALLED_APPS = [
    # django_dramatiq first, as its documentation asks (docs/architecture.md#library-pitfalls).
    "django_dramatiq",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Its system checks catch settings in the format before django-csp 4.0, which it would ignore.
    "csp",
    "django.contrib.humanize",
    "axes",
    "accounts",
    "teams",
    "integrations",
]
if DEBUG:
    # The GitHub simulator (docs/github-simulator.md), for its command: a development tool, imported
    # by nothing but that command and the tests. A deployment has no use for it.
    INSTALLED_APPS.append("github_simulator")

MIDDLEWARE = [
    # /healthz and /metrics answer first: probes come by address over plain HTTP (ops/middleware.py).
    "ops.middleware.OpsEndpoints",
    # Tells a request a Pushpin signed (a key of GRIP_URL) from any other, and turns a view's GRIP
    # instructions into the headers Pushpin reads (integrations/live/team_events.py).
    "django_grip.GripMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the app itself (WhiteNoise), in the pool of threads that answers every request
    # but the event streams Django holds (config/asgi.py).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

DATABASE_POOL_SIZE = int(env("DATABASE_POOL_SIZE", 8))
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A pool bounds the connections a process opens: a burst of event streams connecting at once
    # (a thousand browsers reconnecting after a deploy) waits its turn instead of exhausting the
    # server's max_connections. Each stream gives its connection back once it has checked access.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_SIZE,
        "timeout": 30,
    }
    # The pool checks a connection before handing it out (one round trip): after PostgreSQL restarts,
    # every connection it kept is dead, and without the check each one failed a request (a 500 on
    # the members page, a sync's first try) before it was dropped.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A web process and a worker write the same file: wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # Each thread keeps its connection: opening and closing one per request was 1.3 ms of the members
    # page's 10 (bench.members_page). PostgreSQL has its pool instead, which persistent connections
    # would conflict with.
    DATABASES["default"]["CONN_MAX_AGE"] = None
    # A file, not memory, so that the worker and web processes the tests start share it; one per
    # test run, so that two runs side by side do not share it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"member-sync-test-{os.getpid()}.sqlite3")
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes first: it refuses a locked-out login before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Django's database sessions, read with a statement written out (accounts/sessions.py).
SESSION_ENGINE = "accounts.sessions"

# Failed logins, counted in the database by django-axes: after AXES_FAILURE_LIMIT failures of a
# username from one client address, that username is locked at that address for AXES_COOLOFF_MINUTES;
# each failure meanwhile starts the pause again. By the pair, not the username alone: whoever knows
# an admin's username could otherwise lock them out from anywhere, for as long as they kept failing.
# The client address is REMOTE_ADDR (django-ipware is not installed): uvicorn sets it from
# X-Forwarded-For only when the connection comes from FORWARDED_ALLOW_IPS (127.0.0.1 by default),
# so a client cannot pick its own address by sending that header. An IPv6 client counts as its /64
# (accounts/client_address.py, axes' documented AXES_CLIENT_IP_CALLABLE).
AXES_FAILURE_LIMIT = int(env("AXES_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = timedelta(minutes=int(env("AXES_COOLOFF_MINUTES", 15)))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "accounts.client_address.client_address"
# A success forgets earlier failures: a user who mistyped twice starts afresh.
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/too_many_attempts.html"
# Its record of every successful login is not needed to count failures, and would grow without end.
AXES_DISABLE_ACCESS_LOG = True
# Otherwise it announces itself in the output of every command (the simulator's prints its URL
# first); failures and lockouts are logged all the same.
AXES_VERBOSE = False

# Mail, for password reset only. Without EMAIL_HOST there is no mail server, and the password-reset
# pages do not exist (config/urls.py) rather than pretend to send a link.
EMAIL_HOST = env("EMAIL_HOST")
EMAIL_PORT = int(env("EMAIL_PORT", 587))
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=True)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "webmaster@localhost")
# The team admins' notification mail (integrations/notifications/admin_mail.py) goes the same way.
# Without EMAIL_HOST: printed on the console under DEBUG, so that a newcomer running `make run`
# sees it; dropped otherwise, as there is nowhere to send it (the worker logs that it was not sent).
if not EMAIL_HOST:
    EMAIL_BACKEND = (
        "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.dummy.EmailBackend"
    )

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("STATIC_ROOT", BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # With DEBUG off: hashed names (cached for ten years: a changed file gets a new name), gzip and
    # Brotli copies, made by collectstatic.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# OAuth tokens are encrypted with these Fernet keys, newest first (MultiFernet); see integrations/crypto.py.
# Development derives one from SECRET_KEY; a deployment must give its own, checked here at start
# rather than at the first token.
TOKEN_ENCRYPTION_KEYS = env_list("TOKEN_ENCRYPTION_KEYS")
if not TOKEN_ENCRYPTION_KEYS and not DEBUG:
    raise ImproperlyConfigured(
        "Set TOKEN_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first; make one with: "
        "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
    )
for _key in TOKEN_ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured("TOKEN_ENCRYPTION_KEYS holds a value that is not a Fernet key.") from None

# HTTPS by default once DEBUG is off, behind a proxy that says the scheme in X-Forwarded-Proto.
# HTTPS_ONLY=0 allows a plain-HTTP trial on this machine (make cluster, the bench, the tests): with
# DEBUG off, only when every ALLOWED_HOSTS entry names the loopback interface, since anywhere else
# session cookies and passwords would cross the network in the clear.
HTTPS_ONLY = env_bool("HTTPS_ONLY", default=not DEBUG)
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
if not HTTPS_ONLY and not DEBUG and not set(ALLOWED_HOSTS) <= LOOPBACK_HOSTS:
    raise ImproperlyConfigured(
        "HTTPS_ONLY=0 (plain HTTP) is only for a trial on this machine: with DEBUG off, ALLOWED_HOSTS may then "
        f"name only {', '.join(sorted(LOOPBACK_HOSTS))}. Serve the other hosts over HTTPS."
    )
if HTTPS_ONLY:
    SECURE_SSL_REDIRECT = True
    # No SECURE_PROXY_SSL_HEADER: Django would take X-Forwarded-Proto from anyone who reaches a web
    # process. uvicorn sets the request's scheme from it only when the connection comes from
    # FORWARDED_ALLOW_IPS (the proxy), and Django reads that scheme (docs/deploy.md#trust-boundary).
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")


def default_site_url(*, debug, https_only, allowed_hosts, port):
    """The site's own address, for links written where no request says it (notifications, mail):
    under DEBUG the server `make run` starts; otherwise the first host of ALLOWED_HOSTS that names one
    (not a pattern), over HTTPS unless HTTPS_ONLY is off (a trial on this machine, on PORT)."""
    if debug:
        return f"http://127.0.0.1:{port or 8000}"
    host = next((host for host in allowed_hosts if host != "*" and not host.startswith(".")), "localhost")
    return f"https://{host}" if https_only else f"http://{host}:{port or 8000}"


SITE_URL = env(
    "SITE_URL",
    default_site_url(debug=DEBUG, https_only=HTTPS_ONLY, allowed_hosts=ALLOWED_HOSTS, port=env("PORT")),
).rstrip("/")
if urlsplit(SITE_URL).scheme not in ("http", "https") or not urlsplit(SITE_URL).hostname:
    raise ImproperlyConfigured("SITE_URL must be the site's own address, https://HOST (or http://HOST:PORT).")

# Notifications are posted to URLs team admins type (docs/security.md): with this off, only https
# URLs of public addresses other than this site's own are allowed. On by default under DEBUG, where
# the receiver is usually on this machine.
NOTIFICATIONS_ALLOW_PRIVATE_URLS = env_bool("NOTIFICATIONS_ALLOW_PRIVATE_URLS", default=DEBUG)

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
# Events get a Redis of their own: django-eventstream publishes on one unprefixed pub/sub channel
# whatever the database number, so whoever can write to that Redis can inject events
# (docs/architecture.md#library-pitfalls).
# Defaults to REDIS_URL for development; give production its own server or ACL user.
EVENTS_REDIS_URL = env("EVENTS_REDIS_URL", REDIS_URL)

GITHUB_CLIENT_ID = env("GITHUB_CLIENT_ID", "")
GITHUB_CLIENT_SECRET = env("GITHUB_CLIENT_SECRET", "")
GITHUB_API_URL = env("GITHUB_API_URL", "https://api.github.com").rstrip("/")


def default_web_url(api_url):
    # GitHub Enterprise Server serves its web pages (OAuth included) at <host> and REST at
    # <host>/api/v3: setting the API base alone is enough there.
    if api_url.endswith("/api/v3"):
        return api_url[: -len("/api/v3")]
    return "https://github.com"


def default_graphql_url(api_url):
    # github.com serves GraphQL at api.github.com/graphql; GitHub Enterprise Server at <host>/api/graphql.
    if api_url.endswith("/api/v3"):
        return api_url[: -len("/v3")] + "/graphql"
    return api_url + "/graphql"


GITHUB_WEB_URL = env("GITHUB_WEB_URL", default_web_url(GITHUB_API_URL)).rstrip("/")
GITHUB_GRAPHQL_URL = env("GITHUB_GRAPHQL_URL", default_graphql_url(GITHUB_API_URL))

# The GitHub App (docs/architecture.md#the-github-app): an installation's tokens belong to no person.
# Offered only when all five are set; half a configuration is refused at start, as is a key that
# does not load, rather than at the first install.
GITHUB_APP_ID = env("GITHUB_APP_ID")
GITHUB_APP_SLUG = env("GITHUB_APP_SLUG")
GITHUB_APP_CLIENT_ID = env("GITHUB_APP_CLIENT_ID")
GITHUB_APP_CLIENT_SECRET = env("GITHUB_APP_CLIENT_SECRET")


def github_app_private_key():
    """The App's private key (PEM text), from GITHUB_APP_PRIVATE_KEY or the file GITHUB_APP_PRIVATE_KEY_FILE
    names, checked to be an RSA key (the App's JWT is RS256)."""
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    name, pem = "GITHUB_APP_PRIVATE_KEY", env("GITHUB_APP_PRIVATE_KEY")
    if not pem and env("GITHUB_APP_PRIVATE_KEY_FILE"):
        name = "GITHUB_APP_PRIVATE_KEY_FILE"
        try:
            pem = Path(env(name)).read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise ImproperlyConfigured(f"{name} names a file that cannot be read ({type(error).__name__}).") from None
    if not pem:
        return ""
    # Env files cannot hold line breaks: a key written on one line with \n between its lines is taken too.
    if "\n" not in pem.strip():
        pem = pem.replace("\\n", "\n")
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, RSAPrivateKey):
        raise ImproperlyConfigured(f"{name} does not hold the GitHub App's private key (a PEM RSA key, unencrypted).")
    return pem


GITHUB_APP_PRIVATE_KEY = github_app_private_key()
_GITHUB_APP_PARTS = {
    "GITHUB_APP_ID": GITHUB_APP_ID,
    "GITHUB_APP_SLUG": GITHUB_APP_SLUG,
    "GITHUB_APP_PRIVATE_KEY": GITHUB_APP_PRIVATE_KEY,
    "GITHUB_APP_CLIENT_ID": GITHUB_APP_CLIENT_ID,
    "GITHUB_APP_CLIENT_SECRET": GITHUB_APP_CLIENT_SECRET,
}
if any(_GITHUB_APP_PARTS.values()) and not all(_GITHUB_APP_PARTS.values()) and not DEBUG:
    _missing = ", ".join(name for name, value in _GITHUB_APP_PARTS.items() if not value)
    raise ImproperlyConfigured(f"The GitHub App is configured only in part: set {_missing} too, or none of them.")
if GITHUB_APP_ID and not GITHUB_APP_ID.isdigit():
    raise ImproperlyConfigured("GITHUB_APP_ID must be the GitHub App's numeric id.")

# What GitHub signs webhook deliveries with (the App's webhook secret,
# docs/architecture.md#webhooks). Empty: every delivery is refused (401), as none can be verified.
GITHUB_WEBHOOK_SECRET = env("GITHUB_WEBHOOK_SECRET", "")


def default_avatars_url(web_url):
    """Where members' avatars come from: github.com's avatar host, or the web host of GitHub
    Enterprise Server (and of the simulator), which serves them at /avatars/."""
    if urlsplit(web_url).hostname == "github.com":
        return "https://avatars.githubusercontent.com"
    return web_url


# Only its scheme, host and port count: the pages' Content-Security-Policy allows images from it.
_avatars = urlsplit(env("GITHUB_AVATARS_URL", default_avatars_url(GITHUB_WEB_URL)))
GITHUB_AVATARS_ORIGIN = f"{_avatars.scheme}://{_avatars.netloc}"

# Pages run only the app's own scripts and styles, in DEBUG as in production (so that the tests see
# the policy a deployment sends): an injected <script> or style="" does nothing. GitHub is in
# form-action because Chromium applies it to the redirects a posted form follows, and connecting
# GitHub ends on its web pages.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", GITHUB_AVATARS_ORIGIN],
        "connect-src": [SELF],
        "form-action": [SELF, GITHUB_WEB_URL],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# Workers poll their queue: 100 ms instead of the default second brings pick-up from ~450 ms to
# ~60 ms (docs/architecture.md#library-pitfalls). Read by dramatiq when `rundramatiq` starts, which
# inherits this environment.
os.environ.setdefault("dramatiq_worker_timeout", "100")

# How long a worker may go silent before its messages go to another worker
# (docs/architecture.md#library-pitfalls). A syncing run whose heartbeat is older than this has lost
# its worker, and a redelivered message takes it.
DRAMATIQ_HEARTBEAT_TIMEOUT_MS = int(env("DRAMATIQ_HEARTBEAT_TIMEOUT_MS", 60_000))

# How long one member sync may run before the worker stops it and records it as failed.
MEMBER_SYNC_TIME_LIMIT_SECONDS = int(env("MEMBER_SYNC_TIME_LIMIT_SECONDS", 30 * 60))

# A run that would deactivate more than this share of the active members, and more than this many,
# deactivates nobody and holds them for an admin to confirm or dismiss
# (docs/architecture.md#who-may-deactivate): an organization that seems to lose a fifth of its
# people at once is more likely a wrong answer or a wrong token.
MEMBER_SYNC_HOLD_DEACTIVATIONS_PERCENT = int(env("MEMBER_SYNC_HOLD_DEACTIVATIONS_PERCENT", 20))
MEMBER_SYNC_HOLD_DEACTIVATIONS_MIN = int(env("MEMBER_SYNC_HOLD_DEACTIVATIONS_MIN", 5))

# The scheduled full re-sync (docs/interfaces.md#runs-states-and-triggers): each integration is
# synced in full at most this long after its last run started, spread over the period; 0 turns it
# off. It catches what webhooks missed (and is all an OAuth connection, which receives none, gets).
MEMBER_SYNC_EVERY_SECONDS = int(env("MEMBER_SYNC_EVERY_SECONDS", 24 * 3600))
# How often each worker process looks for due integrations (docs/deploy.md#2-environment-variables).
MEMBER_SYNC_SCHEDULE_CHECK_SECONDS = float(env("MEMBER_SYNC_SCHEDULE_CHECK_SECONDS", 60))
# How long the change records (MemberChange) are kept: the schedule's pass in every worker prunes
# older ones, a bounded batch at a time (integrations/member_sync/retention.py); 0 keeps them forever.
MEMBER_CHANGES_KEEP_DAYS = int(env("MEMBER_CHANGES_KEEP_DAYS", 400))
if MEMBER_CHANGES_KEEP_DAYS < 0:
    raise ImproperlyConfigured("MEMBER_CHANGES_KEEP_DAYS is a number of days, or 0 to keep every change.")
# How often the App's failed webhook deliveries are asked for again (integrations/member_sync/healing.py); 0: never.
GITHUB_WEBHOOK_HEALING_SECONDS = int(env("GITHUB_WEBHOOK_HEALING_SECONDS", 600))

# An organization with at least this many members (as its latest full sync counted them) is synced
# on a queue of its own, member_sync_large, and at most MEMBER_SYNC_LARGE_CONCURRENCY such syncs run
# at once across all workers: a few organizations of 50,000 cannot take every worker thread while a
# small team waits on its Sync Now. Keep each worker's threads above that cap (docs/deploy.md).
MEMBER_SYNC_LARGE_ORGANIZATION = int(env("MEMBER_SYNC_LARGE_ORGANIZATION", 5000))
MEMBER_SYNC_LARGE_CONCURRENCY = int(env("MEMBER_SYNC_LARGE_CONCURRENCY", 2))

# Keys of two deployments (or test runs) sharing one Redis stay apart: the broker's and the cache's.
DRAMATIQ_NAMESPACE = env("DRAMATIQ_NAMESPACE", "dramatiq")

DRAMATIQ_BROKER = {
    "BROKER": "dramatiq.brokers.redis.RedisBroker",
    "OPTIONS": {
        "url": REDIS_URL,
        "namespace": DRAMATIQ_NAMESPACE,
        # How long before a dead worker's messages are given to another
        # (docs/architecture.md#library-pitfalls).
        "heartbeat_timeout": DRAMATIQ_HEARTBEAT_TIMEOUT_MS,
        # Out of a million broker commands, how many also requeue dead workers' messages.
        "maintenance_chance": int(env("DRAMATIQ_MAINTENANCE_CHANCE", 1_000)),
    },
    # Written out because django-dramatiq's default names dramatiq.middleware.Prometheus, which
    # dramatiq 2.x removed (docs/architecture.md#library-pitfalls). Without django-dramatiq's
    # AdminMiddleware: it writes a row per message sent, started and finished (most of a scheduled
    # pass's database time), for a task list nobody reads; MemberSyncRun is the run history.
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        "dramatiq.middleware.CurrentMessage",
        "dramatiq.middleware.ShutdownNotifications",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
        "integrations.member_sync.periodic.StalledRunReaper",
        "integrations.member_sync.periodic.ScheduledFullSyncs",
        "integrations.member_sync.periodic.WebhookHealingCheck",
        "integrations.member_sync.periodic.UnpublishedRunsCheck",
        "integrations.member_sync.periodic.NotificationUpkeep",
    ],
}

# The cache is Redis so that what is counted in it (sign-ups per address) holds across web processes.
# Never call cache.clear(): on Redis it empties the whole database, the broker's queues included.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{DRAMATIQ_NAMESPACE}:cache",
    }
}
# Sign-up attempts one client address may make in an hour (accounts/signup_limit.py).
SIGNUP_ATTEMPTS_PER_HOUR = int(env("SIGNUP_ATTEMPTS_PER_HOUR", 20))


def redis_connection_kwargs(url):
    """redis.Redis(**kwargs) for a redis:// URL: django-eventstream takes keyword arguments."""
    from redis.backoff import NoBackoff
    from redis.connection import parse_url
    from redis.retry import Retry

    # One immediate retry, not redis-py's ten with backoff: those made each event published while
    # the events Redis was down take 4 s, and a sync publishing its progress crawl.
    return {**parse_url(url), "retry": Retry(NoBackoff(), 1)}


EVENTSTREAM_REDIS = redis_connection_kwargs(EVENTS_REDIS_URL)
# Events are kept in Redis for replay (Last-Event-ID), so that an open stream never touches the
# database while it waits.
EVENTSTREAM_STORAGE_CLASS = "integrations.live.eventstream.RestartSafeRedisStorage"
EVENTSTREAM_CHANNELMANAGER_CLASS = "integrations.live.channels.TeamChannelManager"
# A user's open streams (tabs) at once, across web processes; the one over the cap is refused.
EVENTS_MAX_STREAMS_PER_USER = int(env("EVENTS_MAX_STREAMS_PER_USER", 20))
# A stream then ends and the browser reconnects from its last event id: no stream, thread or claim
# is held forever by a tab left open.
EVENTS_STREAM_MAX_SECONDS = int(env("EVENTS_STREAM_MAX_SECONDS", 15 * 60))
# How many streams the site opens again a second after a restart of Pushpin (or of a lone web
# process): a page whose stream drops spreads its reconnection over the streams open ÷ this
# (integrations/live/streams.py). Measured on 2 cores with Pushpin and 2 web processes
# (bench.pushpin_restart, 5,000 pages): at 400 they were back in 23.5-27.7 s but Pushpin answered other
# pages 502 12-22 times, its hand-off to the web processes full; at 350, 28.2-29.3 s and 8.
EVENTS_REOPENINGS_PER_SECOND = int(env("EVENTS_REOPENINGS_PER_SECOND", 350))
if EVENTS_REOPENINGS_PER_SECOND < 1:
    raise ImproperlyConfigured("EVENTS_REOPENINGS_PER_SECOND must be a whole number of streams a second, 1 or more.")
# Requests one web process works on at once (event streams opening: a quarter of them); the rest
# are answered 503 with a Retry-After at once (ops/shedding.py). Past the cores and the database
# pool, more at once adds waiting, not answers.
WEB_MAX_PENDING_REQUESTS = int(env("WEB_MAX_PENDING_REQUESTS", 32))
# Channel names (and so their stored events) of two deployments sharing one Redis stay apart.
EVENTS_CHANNEL_PREFIX = env("EVENTS_CHANNEL_PREFIX", "")
if not re.fullmatch(r"[\w.-]*", EVENTS_CHANNEL_PREFIX):
    # Event ids are "channel:number" pairs joined by commas; behind Pushpin a ":" in the channel name
    # left every stream without its events.
    raise ImproperlyConfigured("EVENTS_CHANNEL_PREFIX may hold only letters, digits, '.', '-' and '_'.")
if not DEBUG and not EVENTS_CHANNEL_PREFIX and EVENTS_REDIS_URL == REDIS_URL:
    raise ImproperlyConfigured(
        "Isolate the events: set EVENTS_REDIS_URL to a Redis (or ACL user) of their own, or at least "
        "EVENTS_CHANNEL_PREFIX, so that nothing else on REDIS_URL can publish to the teams' streams."
    )


# Behind Pushpin (make cluster, docs/deploy.md): the publish endpoint of each Pushpin in front of the
# web processes, comma-separated, with `key=` the secret it signs the requests it forwards with (its
# sig_key). Pushpin then holds the open streams, Django still decides who may read each, and every
# event is published to Redis and to every Pushpin: each holds some of the streams, and delivers it
# to those.
def check_grip_url(url, where="GRIP_URL"):
    """Parsed as django-grip parses it (a http(s) URL whose query holds key=): a substring test took
    "?key=" (an empty key) and "?nokey=…" alike, and a key that is empty lets any client pass for Pushpin.
    The message says which URL by its place, not its text, which may hold the key."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(
            f"{where} must be Pushpin's control URL, http(s)://host:port/?key=<sig_key> (several: "
            "comma-separated, a comma in a key written %2C)."
        )
    if not any(parse_qs(parts.query).get("key", [])):
        raise ImproperlyConfigured(
            f"{where} needs key=<Pushpin's sig_key> in its query: without it any client could pass for Pushpin."
        )


def grip_proxies(value):
    """GRIP_URL's Pushpins, as django_grip's GRIP_PROXIES entries."""
    urls = [url.strip() for url in value.split(",") if url.strip()]
    for place, url in enumerate(urls, start=1):
        check_grip_url(url, "GRIP_URL" if len(urls) == 1 else f"URL {place} of GRIP_URL")
    proxies = [parse_grip_uri(url) for url in urls]
    control_uris = [proxy["control_uri"] for proxy in proxies]
    if len(set(control_uris)) < len(control_uris):
        raise ImproperlyConfigured("GRIP_URL names one Pushpin twice: it would be sent every event twice.")
    return proxies


# Never a GRIP_URL setting beside it: django_grip's middleware appends that one to GRIP_PROXIES on
# every request Pushpin signs (docs/architecture.md#library-pitfalls).
GRIP_PROXIES = grip_proxies(env("GRIP_URL", ""))

# Errors go to Sentry only where a DSN is given (config/sentry.py). Initialised here, before
# django_dramatiq builds the broker, which the Dramatiq integration must see being built.
SENTRY_DSN = env("SENTRY_DSN", "")
if SENTRY_DSN:
    from config import sentry

    sentry.init(SENTRY_DSN)

# /metrics answers a bearer token, or these addresses (REMOTE_ADDR: the proxy's, behind one), or nobody.
METRICS_TOKEN = env("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1")
for _allowed in METRICS_ALLOWED_IPS:
    # Checked here, not at the first scrape: a host name or a typo made every /metrics request a 500.
    try:
        ipaddress.ip_network(_allowed, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_IPS holds {_allowed!r}, which is not an IP address or network (e.g. 10.0.0.0/8)."
        ) from None

# Every record says the run and team of the sync it was logged in ("-" outside one): a sync's lines
# can be picked out of a busy worker's log.
run_logging.install()
LOGGING = {
    "version": 1,
    # Keep uvicorn's and dramatiq's own loggers (docs/architecture.md#library-pitfalls).
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s run=%(run_id)s team=%(team_id)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}
