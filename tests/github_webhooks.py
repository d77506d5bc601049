"""Webhook deliveries as GitHub sends them (the payloads of its webhooks description, vendored in
tests/vendor/github/), signed with the tests' secret."""

import hashlib
import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers import wait_for

SECRET = "webhook-test-secret"
NEWCOMER = {"id": 9_000_001, "login": "newcomer", "node_id": "U_kgDOAIlUwQ"}


def user(*, id, login, node_id):
    api = f"https://api.github.com/users/{login}"
    return {
        "login": login, "id": id, "node_id": node_id,
        "avatar_url": f"https://avatars.githubusercontent.com/u/{id}?v=4", "gravatar_id": "",
        "url": api, "html_url": f"https://github.com/{login}", "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}", "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs", "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events", "type": "User", "site_admin": False,
    }  # fmt: skip


def organization(*, id, login="acme"):
    return {
        "login": login, "id": id, "node_id": "O_kgDOAAAAAQ", "url": f"https://api.github.com/orgs/{login}",
        "repos_url": f"https://api.github.com/orgs/{login}/repos", "events_url": f"https://api.github.com/orgs/{login}/events",
        "hooks_url": f"https://api.github.com/orgs/{login}/hooks", "issues_url": f"https://api.github.com/orgs/{login}/issues",
        "members_url": f"https://api.github.com/orgs/{login}/members{{/member}}",
        "public_members_url": f"https://api.github.com/orgs/{login}/public_members{{/member}}",
        "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4", "description": None,
    }  # fmt: skip


def member_event(action, org_id, member, *, role="member", org_login="acme"):
    """organization.member_added / member_removed, as GitHub sends it to an App."""
    return {
        "action": action,
        "membership": {
            "url": f"https://api.github.com/orgs/{org_login}/memberships/{member['login']}",
            "state": "active", "role": role, "organization_url": f"https://api.github.com/orgs/{org_login}",
            "user": user(**member),
        },
        "organization": organization(id=org_id, login=org_login),
        "sender": user(id=1, login="octocat", node_id="U_kgAB"),
        "installation": {"id": 42, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI="},
    }  # fmt: skip


def organization_event(action, org_id, *, login="acme", **extra):
    return {
        "action": action, "organization": organization(id=org_id, login=login),
        "sender": user(id=1, login="octocat", node_id="U_kgAB"), **extra,
    }  # fmt: skip


def installation_event(action, installation_id):
    return {
        "action": action,
        "installation": {"id": installation_id, "account": {"login": "acme", "id": 1}, "app_id": 7},
        "sender": user(id=1, login="octocat", node_id="U_kgAB"),
    }


def signed(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Receiver:
    """A webhook receiver on a port of its own: records every delivery (its headers and body) and
    answers with self.status. Where the simulator, as the App, delivers when a test is not about
    what the product does with a delivery."""

    def __init__(self):
        self.deliveries = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.deliveries.append((self.headers, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/github/webhook/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def guids(self) -> list[str]:
        return [headers["X-GitHub-Delivery"] for headers, _ in self.deliveries]

    def wait_for(self, count):
        wait_for(lambda: len(self.deliveries) >= count, timeout=15, message=f"{count} deliveries")
        return self.deliveries

    def close(self):
        self.server.shutdown()
        self.server.server_close()
