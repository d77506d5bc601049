"""Waiting for real things with a timeout, instead of sleeping."""

import socket
import time
import urllib.request

LIVE = 30_000  # ms a live update may take in the browser tests; they take well under a second


def wait_for(predicate, *, timeout=30.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url):
    """The status of a GET, or None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http:// URL)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None
