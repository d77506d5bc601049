"""Webhook deliveries to the App's webhook URL, as GitHub sends them: a JSON body signed with the
webhook secret (X-Hub-Signature-256: HMAC-SHA256 of the raw body), a fresh X-GitHub-Delivery GUID per
delivery and the same one when it is redelivered, from a thread of their own so that the change that
caused them is not held up; and the `organization` and `installation` payloads
(https://docs.github.com/webhooks/webhook-events-and-payloads)."""

import base64
import hashlib
import hmac
import http.client
import itertools
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

from github_simulator.app_api import installation_body
from github_simulator.organizations import VIEWER, Member, SimulatedOrg
from github_simulator.rest import _simple_org, _simple_team, _simple_user
from github_simulator.teams import Team

TIMEOUT_SECONDS = 10  # GitHub gives a receiver ten seconds to answer
HOOK_ID = 510_000_001  # the App's webhook
_USER_AGENT = "GitHub-Hookshot/5e3a1f2"
_FIRST_ATTEMPT_ID = 12_000_000_001
_RESPONSE_KEPT = 64 * 1024  # of a receiver's answer, shown in the delivery's detail


@dataclass
class Delivery:
    """One event sent to the webhook (one X-GitHub-Delivery GUID), however often it was attempted."""

    guid: str
    event: str
    action: str
    installation_id: int
    body: bytes = field(repr=False)
    status: int | None = None  # the receiver's answer to the last attempt; None until it answered
    error: str | None = None  # why the last attempt got no answer
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


@dataclass
class Attempt:
    """One attempt at a delivery: what GitHub's deliveries API lists, each with an id of its own. A
    redelivery is a new attempt under the same GUID."""

    id: int
    delivery: Delivery
    redelivery: bool
    url: str
    request_headers: dict
    delivered_at: float
    duration: float
    status_code: int  # 0: no HTTP answer
    status: str  # "OK", "Invalid HTTP Response: 500", "failed to connect to host"
    response_headers: dict = field(default_factory=dict)
    response_body: str = ""

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass
class _Job:
    delivery: Delivery
    url: str
    secret: str | None
    redelivery: bool
    lost: bool


class Webhooks:
    """Every delivery made and each attempt at it, and the thread that sends them in order. Faults: lost
    deliveries (recorded as failed attempts, never sent) and held ones (sent on release, in either order)."""

    def __init__(self, lock, app):
        self._lock = lock
        self._app = app
        self._deliveries: dict[str, Delivery] = {}
        self._attempts: dict[int, Attempt] = {}
        # Ids go on counting after a reset, as installation ids do: an old id never names a new attempt.
        self._attempt_ids = itertools.count(_FIRST_ATTEMPT_ID)
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._to_lose = 0
        self._held: list[_Job] | None = None

    def send(self, event: str, installation, payload: dict) -> str | None:
        """Queue a delivery of the event; return its GUID, or None when the App has no webhook URL or the
        installation is suspended (GitHub sends a suspended installation nothing)."""
        if not self._app.webhook_url or installation is None or installation.suspended_at is not None:
            return None
        # An event about something else names the installation it is for; an installation event is the whole of it.
        reference = {"id": installation.id, "node_id": _installation_node_id(installation)}
        payload = {"installation": reference, **payload}
        return self._new(event, payload["action"], installation.id, json.dumps(payload).encode()).guid

    def _new(self, event: str, action: str, installation_id: int, body: bytes) -> Delivery:
        delivery = Delivery(str(uuid.uuid4()), event, action, installation_id, body)
        with self._lock:
            self._deliveries[delivery.guid] = delivery
        self._enqueue(delivery, redelivery=False)
        return delivery

    def redeliver(self, guid: str) -> Delivery:
        """Send a delivery again, as GitHub's Redeliver does: same GUID, same body, a new attempt."""
        delivery = self._find(guid)
        with self._lock:
            delivery.status = delivery.error = delivery.delivered_at = None
        self._enqueue(delivery, redelivery=True)
        return delivery

    def resend_as_new(self, guid: str) -> str:
        """A replay: the same body under a new X-GitHub-Delivery GUID, as someone holding an old
        signed body could send it. Returns the new GUID."""
        delivery = self._find(guid)
        return self._new(delivery.event, delivery.action, delivery.installation_id, delivery.body).guid

    def lose(self, times: int = 1) -> None:
        """The next times deliveries (redeliveries included) never reach the receiver: each is recorded
        as a failed attempt, as when the receiver is unreachable."""
        if times < 1:
            raise ValueError("times is at least 1.")
        with self._lock:
            self._to_lose += times

    def hold(self) -> None:
        """Keep the deliveries made from now on until release()."""
        with self._lock:
            if self._held is None:
                self._held = []

    def release(self, order: str = "reversed") -> None:
        """Send the held deliveries, in the order they were made ("sent") or the other way round
        ("reversed"): GitHub promises no order."""
        if order not in ("sent", "reversed"):
            raise ValueError('order is "sent" or "reversed".')
        with self._lock:
            held, self._held = self._held or [], None
        self._start()
        for job in reversed(held) if order == "reversed" else held:
            self._queue.put(job)

    def log(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries.values())

    def get(self, guid: str) -> Delivery | None:
        with self._lock:
            return self._deliveries.get(guid)

    def attempts(self) -> list[Attempt]:
        """Every attempt, newest first, as GitHub's deliveries API lists them."""
        with self._lock:
            return sorted(self._attempts.values(), key=lambda attempt: attempt.id, reverse=True)

    def attempt(self, attempt_id: int) -> Attempt | None:
        with self._lock:
            return self._attempts.get(attempt_id)

    def clear(self) -> None:
        """Forget every delivery and attempt, drop those not sent yet, and end the faults."""
        with self._lock:
            self._deliveries.clear()
            self._attempts.clear()
            self._to_lose, self._held = 0, None
            while not self._queue.empty():
                self._queue.get_nowait()

    def _find(self, guid: str) -> Delivery:
        if (delivery := self.get(guid)) is None:
            raise KeyError(f"No delivery {guid}.")
        return delivery

    def _enqueue(self, delivery: Delivery, *, redelivery: bool) -> None:
        with self._lock:
            lost = self._to_lose > 0
            self._to_lose -= lost
            job = _Job(delivery, self._app.webhook_url, self._app.webhook_secret, redelivery, lost)
            if self._held is not None:
                self._held.append(job)
                return
        self._start()
        self._queue.put(job)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="github-simulator-webhooks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            delivery = job.delivery
            with self._lock:
                if self._deliveries.get(delivery.guid) is not delivery:
                    continue  # cleared by a reset since it was queued
            headers = self._headers(delivery, job.secret)
            started = time.time()
            if job.lost:
                answer = _Answer(None, {}, "", "failed to connect to host")
            else:
                answer = _post(job.url, headers, delivery.body)
            with self._lock:
                if self._deliveries.get(delivery.guid) is not delivery:
                    continue  # cleared by a reset while it was sent: the next test must not see it
                attempt = Attempt(
                    next(self._attempt_ids),
                    delivery,
                    job.redelivery,
                    job.url,
                    headers,
                    started,
                    round(time.time() - started, 3),
                    answer.status or 0,
                    _status_text(answer),
                    answer.headers,
                    answer.body,
                )
                self._attempts[attempt.id] = attempt
                delivery.attempts += 1
                delivery.status, delivery.error, delivery.delivered_at = answer.status, answer.error, time.time()

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


class _Answer(NamedTuple):
    status: int | None  # None: no HTTP answer
    headers: dict
    body: str
    error: str | None  # why no answer came


def _status_text(answer: _Answer) -> str:
    """The attempt's status as GitHub words it in the deliveries API: "OK" for a 2xx, else what went wrong."""
    if answer.status is None:
        return answer.error or "failed to connect to host"
    return "OK" if 200 <= answer.status < 300 else f"Invalid HTTP Response: {answer.status}"


def signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends with this body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, headers: dict, body: bytes) -> _Answer:
    """POST with http.client, which keeps the headers' case as GitHub writes them (urllib would not)."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("POST", parts.path + (f"?{parts.query}" if parts.query else "") or "/", body, headers)
        response = connection.getresponse()
        answer = response.read(_RESPONSE_KEPT).decode(errors="replace")
        return _Answer(response.status, dict(response.getheaders()), answer, None)
    except TimeoutError:
        return _Answer(None, {}, "", "timed out")
    except (OSError, http.client.HTTPException):
        return _Answer(None, {}, "", "failed to connect to host")
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


def team_event(simulator, org: SimulatedOrg, action: str, team: Team, changes: dict | None = None) -> dict:
    """`team` created, edited (with `changes`: each changed attribute's previous value) or deleted."""
    body = _simple_team(org, team, simulator.url, simulator.url)
    if action == "deleted":
        body["deleted"] = True
    extra = {"changes": changes or {}} if action == "edited" else {}
    return {"action": action, **extra, "team": body, **_organization_and_sender(simulator, org)}


def team_membership_event(simulator, org: SimulatedOrg, action: str, team: Team, member: Member) -> dict:
    """`membership` added or removed, with scope team: a member joined or left the team itself."""
    return {
        "action": action,
        "scope": "team",
        "member": _simple_user(member, simulator.url, simulator.url),
        "team": _simple_team(org, team, simulator.url, simulator.url),
        **_organization_and_sender(simulator, org),
    }


def installation_event(simulator, installation, action: str) -> dict:
    body = installation_body(simulator, installation, simulator.url)
    return {"action": action, "installation": body, "sender": _simple_user(VIEWER, simulator.url, simulator.url)}


def _organization_and_sender(simulator, org: SimulatedOrg) -> dict:
    return {
        "organization": _simple_org(org, simulator.url, simulator.url),
        "sender": _simple_user(VIEWER, simulator.url, simulator.url),
    }
