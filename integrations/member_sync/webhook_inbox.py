"""GitHub's webhook deliveries, received (docs/architecture.md#webhooks): quickly, as GitHub waits at
most 10 s. Each is remembered by id and by body, so that one sent again is applied once.
"""

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic_core import from_json

from integrations import words
from integrations.github.webhook_payloads import Event, Unusable, parse, signature_is_valid
from integrations.member_sync.tasks import apply_github_webhook
from integrations.member_sync.webhooks import matching
from integrations.models import WebhookDelivery, max_length

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


def receive(*, body: bytes, signature: str | None, event: str, delivery_id: str) -> Answer:
    """Check one delivery and, if it is one to apply, record it and enqueue it."""
    if not settings.GITHUB_WEBHOOK_SECRET:
        # 401 rather than 503: without a secret no signature can be right, and GitHub's delivery
        # log shows this text to whoever set the webhook up.
        logger.warning("Refused a webhook delivery: GITHUB_WEBHOOK_SECRET is not set")
        return Answer(401, words.WEBHOOKS_NOT_CONFIGURED)
    if not signature_is_valid(body, signature, settings.GITHUB_WEBHOOK_SECRET):
        return Answer(401, "The signature (X-Hub-Signature-256) is missing or wrong.")
    try:
        payload = from_json(body)  # pydantic's parser: a nesting too deep is an error, not a crash
    except ValueError:
        return Answer(400, "The body is not JSON.")
    if not isinstance(payload, dict):
        return Answer(400, "The body is not a JSON object.")
    if event == "ping":
        return Answer(200, "pong")
    try:
        change = parse(event, payload)
    except Unusable as problem:
        logger.warning("Refused webhook delivery %r, not in GitHub's shape: %s", delivery_id[:100], problem)
        return Answer(400, f"The body does not have the shape of GitHub's {event[:50]!r} event.")
    if change is None:
        return Answer(200, "Ignored: an event this server does not apply.")
    if not 0 < len(delivery_id) <= max_length(WebhookDelivery, "delivery_id"):
        return Answer(400, "The delivery id (X-GitHub-Delivery) is missing or too long.")
    body_sha256 = hashlib.sha256(body).hexdigest()
    answer = _record(change, event=event, delivery_id=delivery_id, body_sha256=body_sha256)
    if answer.status != 202:
        return answer
    # After the commit, so that a redelivery sent once the message is out finds the delivery id.
    try:
        apply_github_webhook.send(event, change.model_dump(mode="json"), delivery_id)
    except Exception:
        logger.exception("Could not enqueue webhook delivery %r", delivery_id)
        # Forgotten, so that GitHub's redelivery is applied rather than answered "already received".
        WebhookDelivery.objects.filter(delivery_id=delivery_id).delete()
        return Answer(503, "The queue is unavailable; redeliver this in a minute.")
    return answer


def _record(change: Event, *, event: str, delivery_id: str, body_sha256: str) -> Answer:
    with transaction.atomic():
        try:
            with transaction.atomic():
                WebhookDelivery.objects.create(delivery_id=delivery_id, body_sha256=body_sha256, event=event)
        except IntegrityError:
            # The same id (GitHub's redelivery) or the same body under a new id (a replay).
            return Answer(200, "Already received.")
        if not matching(change).update(last_webhook_at=timezone.now()):
            # Not remembered: only applied deliveries are, and the actor prunes them.
            transaction.set_rollback(True)
            return Answer(200, "Ignored: no team here connected this organization.")
    return Answer(202, "Accepted.")
