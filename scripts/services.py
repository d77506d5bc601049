"""Local services for `make run` and `make test`: find Redis at REDIS_URL, or start one."""

import os
import shutil
import subprocess
import sys
import time
from urllib.parse import urlparse

import redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url():
    return os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)


def redis_answers(url):
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return False


def wait_for_redis(url, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not redis_answers(url):
        if time.monotonic() > deadline:
            sys.exit(f"Redis did not answer at {url} within {timeout:.0f} s.")
        time.sleep(0.05)


def start_redis(url, *, daemonize):
    """Start redis-server for REDIS_URL's host and port. Returns the process, or None if daemonized."""
    server = shutil.which("redis-server")
    if server is None:
        sys.exit(
            f"No Redis answers at {url} and there is no redis-server on PATH.\n"
            "Install Redis (Debian: apt-get install redis-server) or point REDIS_URL at one."
        )
    parsed = urlparse(url)
    args = [server, "--bind", parsed.hostname or "127.0.0.1", "--port", str(parsed.port or 6379)]
    args += ["--save", "", "--appendonly", "no"]
    if daemonize:
        args += ["--daemonize", "yes"]
        subprocess.run(args, check=True)
        process = None
    else:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
    wait_for_redis(url)
    print(f"Started redis-server at {url}", flush=True)
    return process


def ensure_redis(*, daemonize):
    url = redis_url()
    if redis_answers(url):
        return None
    return start_redis(url, daemonize=daemonize)


if __name__ == "__main__":
    # `python scripts/services.py`: make sure Redis answers, leaving a started one running (make test).
    ensure_redis(daemonize=True)
