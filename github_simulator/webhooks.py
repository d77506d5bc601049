"""Webhook deliveries to the App's webhook URL, as GitHub sends them: a JSON body signed with the
webhook secret (X-Hub-Signature-256: HMAC-SHA256 of the raw body), a fresh X-GitHub-Delivery GUID per
delivery and the same one when it is redelivered, from a thread of their own so that the change that
caused them is not held up; and the `organization` and `installation` payloads
(https://docs.github.com/webhooks/webhook-events-and-payloads)."""

import base64
import hashlib
import hmac
import http.client
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from github_simulator.app_api import installation_body
from github_simulator.organizations import VIEWER, Member, SimulatedOrg
from github_simulator.rest import _simple_org, _simple_user

TIMEOUT_SECONDS = 10  # GitHub gives a receiver ten seconds to answer
HOOK_ID = 510_000_001  # the App's webhook
_USER_AGENT = "GitHub-Hookshot/5e3a1f2"


@dataclass
class Delivery:
    guid: str
    event: str
    action: str
    installation_id: int
    body: bytes = field(repr=False)
    status: int | None = None  # the receiver's answer; None until it answered
    error: str | None = None  # why no answer came
    attempts: int = 0
    delivered_at: float | None = None

    def summary(self) -> dict:
        return {
            "guid": self.guid,
            "event": self.event,
            "action": self.action,
            "installation_id": self.installation_id,
            "status": self.status,
            "error": self.error,
            "attempts": self.attempts,
            "delivered": self.delivered_at is not None,
        }


class Webhooks:
    """Every delivery made, and the thread that sends them in order."""

    def __init__(self, lock, app):
        self._lock = lock
        self._app = app
        self._deliveries: dict[str, Delivery] = {}
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def send(self, event: str, installation, payload: dict) -> str | None:
        """Queue a delivery of the event; return its GUID, or None when the App has no webhook URL or the
        installation is suspended (GitHub sends a suspended installation nothing)."""
        if not self._app.webhook_url or installation is None or installation.suspended_at is not None:
            return None
        # An event about something else names the installation it is for; an installation event is the whole of it.
        reference = {"id": installation.id, "node_id": _installation_node_id(installation)}
        payload = {"installation": reference, **payload}
        delivery = Delivery(str(uuid.uuid4()), event, payload["action"], installation.id, json.dumps(payload).encode())
        with self._lock:
            self._deliveries[delivery.guid] = delivery
        self._enqueue(delivery)
        return delivery.guid

    def redeliver(self, guid: str) -> Delivery:
        """Send a delivery again, as GitHub's Redeliver does: same GUID, same body."""
        with self._lock:
            if (delivery := self._deliveries.get(guid)) is None:
                raise KeyError(f"No delivery {guid}.")
            delivery.status = delivery.error = delivery.delivered_at = None
        self._enqueue(delivery)
        return delivery

    def log(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries.values())

    def get(self, guid: str) -> Delivery | None:
        with self._lock:
            return self._deliveries.get(guid)

    def clear(self) -> None:
        """Forget every delivery, and drop those not sent yet."""
        with self._lock:
            self._deliveries.clear()
            while not self._queue.empty():
                self._queue.get_nowait()

    def _enqueue(self, delivery: Delivery) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="github-simulator-webhooks", daemon=True)
                self._thread.start()
        self._queue.put((delivery, self._app.webhook_url, self._app.webhook_secret))

    def _run(self) -> None:
        while True:
            delivery, url, secret = self._queue.get()
            with self._lock:
                if self._deliveries.get(delivery.guid) is not delivery:
                    continue  # cleared by a reset since it was queued
            status, error = _post(url, self._headers(delivery, secret), delivery.body)
            with self._lock:
                delivery.attempts += 1
                delivery.status, delivery.error, delivery.delivered_at = status, error, time.time()

    def _headers(self, delivery: Delivery, secret: str | None) -> dict:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Delivery": delivery.guid,
            "X-GitHub-Hook-ID": str(HOOK_ID),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(self._app.id),
        }
        if secret:
            # Without a secret GitHub signs nothing; with one it still sends the legacy SHA-1 beside SHA-256.
            headers["X-Hub-Signature-256"] = signature(secret, delivery.body)
            legacy = hmac.new(secret.encode(), delivery.body, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature"] = f"sha1={legacy}"
        return headers


def signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends with this body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, headers: dict, body: bytes) -> tuple[int | None, str | None]:
    """POST with http.client, which keeps the headers' case as GitHub writes them (urllib would not)."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("POST", parts.path + (f"?{parts.query}" if parts.query else "") or "/", body, headers)
        response = connection.getresponse()
        response.read()
        return response.status, None
    except (OSError, http.client.HTTPException) as error:
        return None, str(error) or type(error).__name__
    finally:
        connection.close()


def _installation_node_id(installation) -> str:
    # GitHub's legacy global id of an installation: base64 of "023:IntegrationInstallation<id>".
    return base64.b64encode(f"023:IntegrationInstallation{installation.id}".encode()).decode()


# Payloads. The sender is octocat, who makes every change in the simulator.


def member_event(simulator, org: SimulatedOrg, action: str, member: Member) -> dict:
    """`organization` member_added or member_removed."""
    api = simulator.url
    membership = {
        "url": f"{api}/orgs/{org.login}/memberships/{member.login}",
        "state": "active",
        "role": member.role.lower(),
        "organization_url": f"{api}/orgs/{org.login}",
        "user": _simple_user(member, api, simulator.url),
    }
    return {"action": action, "membership": membership, **_organization_and_sender(simulator, org)}


def organization_renamed(simulator, org: SimulatedOrg, old_login: str) -> dict:
    return {"action": "renamed", "changes": {"login": {"from": old_login}}, **_organization_and_sender(simulator, org)}


def organization_deleted(simulator, org: SimulatedOrg) -> dict:
    return {"action": "deleted", **_organization_and_sender(simulator, org)}


def installation_event(simulator, installation, action: str) -> dict:
    body = installation_body(simulator, installation, simulator.url)
    return {"action": action, "installation": body, "sender": _simple_user(VIEWER, simulator.url, simulator.url)}


def _organization_and_sender(simulator, org: SimulatedOrg) -> dict:
    return {
        "organization": _simple_org(org, simulator.url, simulator.url),
        "sender": _simple_user(VIEWER, simulator.url, simulator.url),
    }
