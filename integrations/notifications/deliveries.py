"""Sending a notification: each attempt made by a Dramatiq actor and written on its delivery row,
the retries' schedule, Send test and Redeliver, and the log's upkeep (docs/interfaces.md#notifications).

An attempt is claimed first, by a conditional UPDATE on the row's attempt count: a message sent twice
(a redelivered one, the periodic check's) makes one attempt, and a row claimed by a worker that died
is free again once its claim expires. 2xx is delivered; any other answer, a redirect (never
followed), a timeout or no connection is tried again after RETRY_DELAYS, then the delivery fails.
A destination refused when sending (integrations/notifications/url_safety.py) fails at once.
"""

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import dramatiq
import requests
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations import words
from integrations.crypto import TokenUnreadable
from integrations.models import NotificationDelivery, NotificationEndpoint
from integrations.notifications.signing import signed_headers
from integrations.notifications.url_safety import RefusedDestination, checked_session, destination_problem

logger = logging.getLogger(__name__)

Status = NotificationDelivery.Status

QUEUE = "notifications"
# After each failed attempt the next one waits this long (±10 %): eight attempts in all, the first
# at once and the last about 23.6 hours later.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=8),
    timedelta(hours=8),
)
# Seconds to connect, then to answer: a receiver that needs longer should answer first and work after.
CONNECT_TIMEOUT, READ_TIMEOUT = 3, 10
# How long a worker holds an attempt: longer than one can take.
CLAIM_FOR = timedelta(seconds=60)
# What is kept of an answer: its first characters, and the last attempts of a delivery.
ANSWER_KEPT = 300
HISTORY_KEPT = 20
# Deliveries older than this leave the log (`prune`).
DELIVERIES_KEPT = timedelta(days=30)
# A pending delivery this late has lost its message (the broker lost it, or its sending failed).
LOST_AFTER = timedelta(minutes=10)
TEST = "test"


@dramatiq.actor(queue_name=QUEUE, max_retries=0, time_limit=60_000)
def deliver_notification(delivery_id: int, attempts: int) -> None:
    """Make the delivery's next attempt, if it has made `attempts` so far and is still pending."""
    delivery = _claim(delivery_id, attempts)
    if delivery is None:
        logger.info("Notification delivery %s: attempt %d already made, or delivery gone", delivery_id, attempts + 1)
        return
    _record(delivery, _attempt(delivery))


def send_after_commit(delivery: NotificationDelivery) -> None:
    """Queue the delivery's next attempt once the transaction that wrote it commits. If the broker
    cannot be reached, the periodic check (resend_lost) sends it later."""
    pk, attempts = delivery.pk, delivery.attempts
    transaction.on_commit(lambda: _send(pk, attempts), robust=True)


def _send(delivery_id: int, attempts: int, delay: timedelta | None = None) -> None:
    milliseconds = int(delay.total_seconds() * 1000) if delay else None
    try:
        deliver_notification.send_with_options(args=(delivery_id, attempts), delay=milliseconds)
    except Exception:
        logger.exception("Could not queue notification delivery %s; the periodic check sends it later", delivery_id)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    answer: str
    # Not to be tried again: the destination or the secret refused here, whatever the receiver.
    final: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _claim(delivery_id: int, attempts: int) -> NotificationDelivery | None:
    now = timezone.now()
    claimed_until = now + CLAIM_FOR
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    rows = NotificationDelivery.objects.filter(Q(pk=delivery_id, status=Status.PENDING, attempts=attempts) & free)
    if not rows.update(claimed_until=claimed_until):
        return None
    return NotificationDelivery.objects.select_related("endpoint").get(pk=delivery_id)


def _attempt(delivery: NotificationDelivery) -> Outcome:
    """One POST of the delivery's body, signed now; what came of it."""
    endpoint = delivery.endpoint
    problem = destination_problem(endpoint.url, resolve=False)  # the connection checks the addresses
    if problem:
        return Outcome(None, problem, final=True)
    try:
        secret = endpoint.secret
    except TokenUnreadable:
        return Outcome(None, words.SIGNING_KEY_UNREADABLE, final=True)
    headers = signed_headers(secret, message_id=delivery.message_id, at=timezone.now(), body=delivery.body)
    try:
        with checked_session() as session:
            response = session.post(
                endpoint.url,
                data=delivery.body.encode(),
                headers=headers,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                allow_redirects=False,
                stream=True,
            )
            with response:
                return Outcome(response.status_code, _answer_of(response))
    except RefusedDestination as refusal:
        return Outcome(None, str(refusal), final=True)
    except requests.Timeout:
        return Outcome(None, words.DELIVERY_TIMED_OUT.format(seconds=READ_TIMEOUT))
    except requests.RequestException as error:
        return Outcome(None, words.DELIVERY_NO_CONNECTION.format(reason=_reason(error)))


def _answer_of(response: requests.Response) -> str:
    """The first characters of the answer's body; a redirect says where it led, as it is not followed."""
    if response.is_redirect:
        return words.DELIVERY_REDIRECT.format(location=response.headers.get("location", "")[:200])
    try:
        head = response.raw.read(ANSWER_KEPT * 4, decode_content=True) or b""
    except Exception:  # an answer cut short, or an encoding that cannot be read: its status says enough
        head = b""
    return " ".join(head.decode("utf-8", errors="replace").split())[:ANSWER_KEPT]


def _reason(error: BaseException) -> str:
    """Why no answer came, in a few words: the innermost operating-system error, not the library's
    message (which names the URL, whose path may be a secret of its own)."""
    if isinstance(error, requests.exceptions.SSLError):
        return "the TLS handshake failed (a certificate not trusted, or not for this host)"
    seen: list[BaseException] = []
    pending: list[object] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or current in seen:
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
    for candidate in seen:
        if isinstance(candidate, OSError) and candidate.strerror:
            return candidate.strerror
    return type(error).__name__


def _record(delivery: NotificationDelivery, outcome: Outcome) -> None:
    """Write the attempt on the row, if this worker still holds it, and queue the next one."""
    now = timezone.now()
    made = delivery.attempts + 1
    entry = {"at": now.isoformat(), "status_code": outcome.status_code, "answer": outcome.answer}
    fields: dict = {
        "attempts": made,
        "last_status_code": outcome.status_code,
        "answer": outcome.answer,
        "history": [*delivery.history, entry][-HISTORY_KEPT:],
        "last_attempt_at": now,
        "claimed_until": None,
    }
    retry_in = None
    if outcome.delivered:
        fields.update(status=Status.DELIVERED, next_attempt_at=None)
    elif outcome.final or delivery.type == TEST or made > len(RETRY_DELAYS):
        fields.update(status=Status.FAILED, next_attempt_at=None)
    else:
        retry_in = RETRY_DELAYS[made - 1] * random.uniform(0.9, 1.1)  # noqa: S311 (jitter, not security)
        fields.update(next_attempt_at=now + retry_in)
    mine = NotificationDelivery.objects.filter(
        pk=delivery.pk, attempts=delivery.attempts, claimed_until=delivery.claimed_until
    )
    if not mine.update(**fields):
        logger.warning("Notification delivery %s: attempt %d outlived its claim; not recorded", delivery.pk, made)
        return
    for name, value in fields.items():
        setattr(delivery, name, value)
    logger.info(
        "Notification delivery %s (%s) attempt %d: %s",
        delivery.pk,
        delivery.type,
        made,
        outcome.status_code or "no answer",
    )
    if retry_in is not None:
        _send(delivery.pk, made, delay=retry_in)


def attempt_now(delivery: NotificationDelivery) -> NotificationDelivery:
    """Make a new delivery's first attempt in this process, at once (Send test): the caller waits
    for the answer, at most CONNECT_TIMEOUT + READ_TIMEOUT seconds."""
    claimed = _claim(delivery.pk, 0)
    if claimed is not None:
        _record(claimed, _attempt(claimed))
    delivery.refresh_from_db()
    return delivery


def redeliver(delivery: NotificationDelivery) -> NotificationDelivery:
    """The same message (its id, type and body) sent again as a new delivery, with its own attempts
    and retries; the original stays in the log as it ended."""
    again = NotificationDelivery.objects.create(
        endpoint=delivery.endpoint,
        message_id=delivery.message_id,
        type=delivery.type,
        body=delivery.body,
        run=delivery.run,
        next_attempt_at=timezone.now(),
    )
    send_after_commit(again)
    return again


def resend_lost(limit: int = 100) -> int:
    """Queue again the next attempt of pending deliveries LOST_AFTER past due: their message was lost.
    Each is claimed for it by a conditional UPDATE, so several workers looking at once send it once."""
    now = timezone.now()
    late: datetime = now - LOST_AFTER
    lost = NotificationDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lt=late).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )
    sent = 0
    for pk, attempts in lost.values_list("pk", "attempts")[:limit]:
        if NotificationDelivery.objects.filter(pk=pk, attempts=attempts, next_attempt_at__lt=late).update(
            next_attempt_at=now
        ):
            _send(pk, attempts)
            sent += 1
    return sent


def prune() -> int:
    """Forget deliveries older than DELIVERIES_KEPT: one DELETE, by the index on their age."""
    deleted, _ = NotificationDelivery.objects.filter(created_at__lt=timezone.now() - DELIVERIES_KEPT).delete()
    return deleted


def recent(endpoint: NotificationEndpoint, count: int = 50) -> list[NotificationDelivery]:
    """The endpoint's latest deliveries, newest first: the page's log."""
    return list(endpoint.deliveries.order_by("-created_at", "-pk").defer("body")[:count])
