"""The receiving end of notifications in tests: a real HTTP server on 127.0.0.1 that records what it
is sent and answers as told, the check of each signature with the `standardwebhooks` package, and
the notifications queue worked off in this process, as a worker would."""

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dramatiq
from standardwebhooks import Webhook

from integrations.models import NotificationEndpoint
from integrations.notifications.deliveries import QUEUE
from tests.helpers import wait_for

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, as the specification's example


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def verified(self, secret: str = SECRET) -> dict:
        """The body, once its signature is verified as a receiver would (raises otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """A notification receiver on a port of its own. Answers each POST with the next of `answers`
    (then 200), after `delay` seconds; `redirect_to` answers 302 there instead."""

    def __init__(self):
        self.received: list[Received] = []
        self.answers: deque[int] = deque()
        self.delay = 0.0
        self.redirect_to = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.answers.popleft() if receiver.answers else 200
                answer = b'{"ok": true}' if status < 300 else b"Receiver says no " + str(status).encode()
                if receiver.redirect_to:
                    status, answer = 302, b""
                self.send_response(status)
                if receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/member-sync"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer_with(self, *statuses: int) -> None:
        self.answers.extend(statuses)

    def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        wait_for(lambda: len(self.received) >= count, timeout=timeout, message=f"{count} notification(s)")
        return self.received

    def of_type(self, event: str) -> list[Received]:
        return [each for each in self.received if each.json["type"] == event]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def resolve_as(monkeypatch, names: dict[str, list[str]]) -> dict[str, list[str]]:
    """Host names resolve as `names` says ({name: [addresses]}, which the test may change later); an
    address is looked up as itself; any other name is unknown. No DNS server is asked."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            family = {True: socket.AF_INET6, False: socket.AF_INET}
            return [(family[":" in address], socket.SOCK_STREAM, 6, "", (address, port)) for address in names[host]]
        return real(host, port, *args, flags=socket.AI_NUMERICHOST, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def endpoint_for(team, url, secret=SECRET) -> NotificationEndpoint:
    endpoint = NotificationEndpoint(team=team, url=url)
    endpoint.secret = secret
    endpoint.save()
    return endpoint


def queued_messages(broker, queue: str = QUEUE) -> list[dramatiq.Message]:
    """The queue's messages, delayed ones included, oldest first, taken off the broker."""
    messages = []
    for name in (queue, f"{queue}.DQ"):
        key = f"{broker.namespace}:{name}"
        messages += [dramatiq.Message.decode(raw) for raw in broker.client.hvals(f"{key}.msgs")]
        broker.client.delete(key, f"{key}.msgs")
    return sorted(messages, key=lambda message: message.message_timestamp)


def work_off(broker, queue: str = QUEUE, *, once: bool = False) -> list[dramatiq.Message]:
    """What a worker would do with the queue, in this process: each message's actor run, a delayed
    one as if its time had come, until the queue is empty (`once`: only the messages there now).
    Returns the messages run."""
    done: list[dramatiq.Message] = []
    for _ in range(50):
        messages = queued_messages(broker, queue)
        for message in messages:
            broker.get_actor(message.actor_name).fn(*message.args, **message.kwargs)
            done.append(message)
        if once or not messages:
            return done
    raise AssertionError(f"the {queue} queue did not empty")
