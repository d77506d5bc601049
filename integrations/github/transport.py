"""HTTP to GitHub: a session that retries with backoff and counts every attempt, timeouts, and
answers read up to a size limit.

Failures come out as ``GitHubUnavailable`` or ``MalformedResponse``. The request, which holds the
Authorization header, never goes into an exception or a log line.
"""

import logging
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.util.retry import Retry

from integrations.github.errors import GitHubUnavailable, MalformedResponse

logger = logging.getLogger(__name__)

USER_AGENT = "member-sync"
MAX_BODY_BYTES = 16 * 1024 * 1024
RETRIED_STATUSES = (500, 502, 503, 504)


class Response(NamedTuple):
    status: int
    headers: CaseInsensitiveDict
    body: bytes


class _CountingRetry(Retry):
    """urllib3's Retry, reporting each retry so that ``api_calls`` counts every attempt."""

    def __init__(self, *args, on_retry: Callable[[], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_retry = on_retry

    def new(self, **kwargs):
        retry = super().new(**kwargs)
        retry.on_retry = self.on_retry
        return retry

    def increment(self, *args, **kwargs):
        retry = super().increment(*args, **kwargs)
        if self.on_retry is not None:
            self.on_retry()
        return retry


def new_session(*, retries: int, backoff_factor: float, resend: bool, on_retry=None) -> requests.Session:
    """A session that retries failed connections and, if ``resend``, requests that reached GitHub but
    failed there (5xx, broken or timed-out answers), with backoff.

    https://urllib3.readthedocs.io/en/stable/reference/urllib3.util.html#urllib3.util.Retry
    """
    retry = _CountingRetry(
        total=retries,
        connect=retries,
        read=retries if resend else 0,
        status=retries if resend else 0,
        other=0,
        allowed_methods=frozenset({"GET", "POST"}),
        status_forcelist=RETRIED_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=10,
        # The last 5xx answer comes back as an answer, mapped to GitHubUnavailable like any other.
        raise_on_status=False,
        # A Retry-After on a 5xx must not park the worker: retry with the backoff, or give up.
        respect_retry_after_header=False,
        on_retry=on_retry,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    # An auth hook of our own (it changes nothing) keeps requests from taking credentials out of a
    # ~/.netrc, which would replace the token's Authorization header. Proxies still come from the
    # environment.
    session.auth = lambda request: request
    return session


def send(session, method, url, *, timeout, **kwargs) -> tuple[Response, int]:
    """One request, its body read (to a limit); returns the answer and the number of redirects followed."""
    try:
        with session.request(method, url, timeout=timeout, stream=True, **kwargs) as response:
            body = _read_body(response)
            return Response(response.status_code, response.headers, body), len(response.history)
    except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
        # The exception holds the request and its Authorization header: it is not chained.
        logger.warning("GitHub request %s %s failed: %s", method, urlsplit(url).path, type(error).__name__)
        raise GitHubUnavailable("no answer in time" if _timed_out(error) else "the connection failed") from None
    except requests.exceptions.RetryError:
        raise GitHubUnavailable("it kept failing") from None
    except requests.exceptions.ContentDecodingError:
        raise MalformedResponse("an answer that could not be decoded") from None


def _read_body(response: requests.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(chunk_size=64 * 1024):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise MalformedResponse(f"an answer larger than {MAX_BODY_BYTES // 2**20} MB")
    return bytes(body)


def _timed_out(error: requests.RequestException) -> bool:
    # Once retries are used up, requests reports a read timeout as a ConnectionError around urllib3's.
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.Timeout) or isinstance(reason, urllib3.exceptions.TimeoutError)
