"""GET /healthz: for anyone, whether this process answers (liveness: 200 "ok", nothing checked);
for an operator (ops/access.py, the rule of /metrics), whether it reaches what it needs (readiness).

Liveness costs nothing, so anyone may probe as often as they like. Readiness opens a database
connection and pings each Redis, and says which part of the deployment is down: 200 when every
part answers, 503 naming the parts that do not; never a 500. Even then the body names, for a
failure, only the kind of error: URLs carry passwords.
"""

import logging
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial
from typing import cast

import dramatiq
import redis
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from dramatiq.brokers.redis import RedisBroker

from ops.access import operator

logger = logging.getLogger(__name__)

# Seconds a part may take to answer. The checks run side by side, so the probe takes about as
# long as the slowest, and a dead Redis or database cannot hold it longer than this.
TIMEOUT = 1.5


def check_database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        # The check runs in a thread of its own: give the connection back (to the pool, if any).
        connection.close()


def check_redis(url):
    with redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT) as client:
        client.ping()


def check_broker():
    # The broker's own client and connection pool: the one that enqueues syncs (a RedisBroker,
    # config/settings.py's DRAMATIQ_BROKER).
    cast(RedisBroker, dramatiq.get_broker()).client.ping()


def parts():
    checks = {"database": check_database, "redis": partial(check_redis, settings.REDIS_URL)}
    if settings.EVENTS_REDIS_URL != settings.REDIS_URL:
        checks["events_redis"] = partial(check_redis, settings.EVENTS_REDIS_URL)
    checks["broker"] = check_broker
    return checks


def health() -> dict[str, str]:
    """Each part's state: "ok", or "error: " and the kind of error."""
    checks = parts()
    executor = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="healthz")
    futures = {name: executor.submit(check) for name, check in checks.items()}
    # Not waiting for the threads: one stuck on a dead server ends with its own timeout.
    executor.shutdown(wait=False)
    done, _ = wait(futures.values(), timeout=TIMEOUT + 0.5)
    states = {}
    for name, future in futures.items():
        if future not in done:
            states[name] = "error: no answer in time"
        elif (error := future.exception()) is not None:
            logger.warning("Health check of %s failed: %s", name, error)
            states[name] = f"error: {type(error).__name__}"
        else:
            states[name] = "ok"
    return states


def healthz(request):
    if not operator(request):
        response = HttpResponse("ok\n", content_type="text/plain")
    else:
        states = health()
        healthy = all(state == "ok" for state in states.values())
        response = JsonResponse(states, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response
