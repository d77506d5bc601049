"""GitHub's rate limits: how long an answer asks the client to wait.

Rate limits are not slept through: ``RateLimited`` carries ``reset_at`` and the caller (a Dramatiq
actor) retries then.
"""

from datetime import UTC, datetime, timedelta

from integrations.github.errors import RateLimited

# "Otherwise, wait for at least one minute before retrying" (secondary rate limits, no headers).
DEFAULT_WAIT = timedelta(minutes=1)
# Primary windows are an hour long: a reset further away than that is not to be believed.
MAX_WAIT = timedelta(hours=1)


def rate_limited(headers, message: str, *, force=False, fallback=None) -> RateLimited | None:
    """The wait GitHub asks for, if this answer is a rate limit (or, with ``force``, in any case).
    ``fallback`` is when the window resets, if known from an earlier answer.

    https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit
    """
    now = datetime.now(UTC)
    if (retry_after := _int_header(headers, "retry-after")) is not None:
        return RateLimited(_wait_until(retry_after, now))
    if _int_header(headers, "x-ratelimit-remaining") == 0:
        reset = _int_header(headers, "x-ratelimit-reset")
        return RateLimited(_reset_at(reset, now) if reset is not None else now + DEFAULT_WAIT)
    lowered = message.lower()
    if force or "rate limit" in lowered or "abuse detection" in lowered:
        if fallback is not None and now < fallback <= now + MAX_WAIT:
            return RateLimited(fallback)
        return RateLimited(now + DEFAULT_WAIT)
    return None


def remaining(headers) -> int | None:
    """How many requests the window has left, if the answer says.

    https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#checking-the-status-of-your-rate-limit
    """
    return _int_header(headers, "x-ratelimit-remaining")


def _int_header(headers, name: str) -> int | None:
    value = headers.get(name, "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 20 else None


def _wait_until(seconds: int, now: datetime) -> datetime:
    return now + min(timedelta(seconds=max(seconds, 1)), MAX_WAIT)


def _reset_at(epoch: int, now: datetime) -> datetime:
    try:
        reset = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return now + DEFAULT_WAIT
    return min(max(reset, now + timedelta(seconds=1)), now + MAX_WAIT)
