"""The web process: uvicorn serves this ASGI application.

Django's ASGI handler runs each synchronous middleware in a thread of its own and back, about twenty
hops a request: measured, 10 ms of CPU for an event stream's opening through Pushpin, and most of the
members page's time. So every request Django answers at once goes through its WSGI handler instead,
in a pool of threads, one hop a request (config/threaded_wsgi.py); only an event stream Django itself holds (no
Pushpin in front) needs the ASGI handler, whose streaming response waits on the event loop without a
thread. Both load the same settings and middleware. In front of both, ops/shedding.py bounds the work
in progress.
"""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from gripcontrol import validate_sig

from config.threaded_wsgi import ThreadedWSGI
from ops.shedding import LoadShedding, is_event_stream

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

streams_held_here = get_asgi_application()
# As many threads as the database pool has connections: more would only wait for one.
answered_at_once = ThreadedWSGI(get_wsgi_application(), workers=settings.DATABASE_POOL_SIZE)
# Every Pushpin of GRIP_URL, each with its own key or all with one: the keys django_grip checks.
PUSHPIN_KEYS = list(dict.fromkeys(proxy.get("verify_key", proxy["key"]) for proxy in settings.GRIP_PROXIES))


def signed_by_pushpin(scope) -> bool:
    """Pushpin holds the stream: Django answers its first request at once. The same check
    django_grip's middleware makes again inside Django."""
    signature = next((value for name, value in scope["headers"] if name == b"grip-sig"), None)
    return signature is not None and any(validate_sig(signature.decode("latin-1"), key) for key in PUSHPIN_KEYS)


async def route(scope, receive, send):
    if scope["type"] != "http" or (is_event_stream(scope["path"]) and not signed_by_pushpin(scope)):
        await streams_held_here(scope, receive, send)
    else:
        await answered_at_once(scope, receive, send)


application = LoadShedding(route, max_pending=settings.WEB_MAX_PENDING_REQUESTS)
