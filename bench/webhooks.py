"""Benchmark of webhook deliveries with the real processes (uvicorn, a rundramatiq worker, Redis):
how fast a delivery is answered, and how soon after it was sent its change reaches a team's open
members page: the `complete` event of its webhook run, on which the page reloads its member list.

Each delivery is GitHub's organization.member_added for a new member, signed with the bench's
secret, under an id of its own. A few deliveries first warm the processes up and are not counted:
a server that receives webhooks has long been running."""

import json
import os
import time
import uuid

import requests

from bench.support import bench_database, print_bars, print_table, timings_row

DELIVERIES = 50
WARM_UP = 3
ORGANIZATION_ID = 4_200_001
SECRET = "bench-only-webhook-secret"  # noqa: S105


def main():
    with bench_database() as env:
        env["GITHUB_WEBHOOK_SECRET"] = SECRET
        os.environ.update(env)
        import django

        django.setup()
        # Imported after setup: they need Django's settings and apps.
        from tests.stack import EventStream, web_server, worker

        cookies, team_slug = _bench_team()
        with web_server(env) as web, worker(env):
            stream = EventStream(f"{web.url}/t/{team_slug}/events/", cookies=cookies)
            stream.next("stream-open")
            http = requests.Session()
            answer_times, visible_times = [], []
            for number in range(WARM_UP + DELIVERIES):
                started = time.time()
                response = http.post(f"{web.url}/github/webhook/", **_delivery(number), timeout=10)
                answered = time.time()
                assert response.status_code == 202, (response.status_code, response.text)
                # Deliveries go one at a time: the next webhook run to complete is this one's.
                stream.next(where=lambda data: data["trigger"] == "webhook" and data["status"] == "complete")
                if number >= WARM_UP:
                    answer_times.append(answered - started)
                    visible_times.append(stream.last_received_at - started)
            stream.close()

    rows = [
        timings_row("delivery answered (POST /github/webhook/)", answer_times),
        timings_row("delivery sent → change on an open page (complete event)", visible_times),
    ]
    print_table(
        "Webhook deliveries (real uvicorn, rundramatiq, Redis)", ["measure", "n", "p50 ms", "p99 ms", "max ms"], rows
    )
    answered, visible = rows
    print_bars(
        [
            ("webhook delivery answered p50 < 20 ms", answered["p50 ms"] < 20, f"{answered['p50 ms']} ms"),
            ("delivery to the change on an open page p50 < 300 ms", visible["p50 ms"] < 300, f"{visible['p50 ms']} ms"),
        ]
    )


def _delivery(number):
    """organization.member_added of the number-th newcomer, as GitHub sends it."""
    from tests.github_webhooks import member_event, signed

    member = {"id": 8_000_000 + number, "login": f"newcomer-{number}", "node_id": f"U_bench{number}"}
    body = json.dumps(member_event("member_added", ORGANIZATION_ID, member, org_login="bench-org")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "organization",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signed(body, SECRET),
    }
    return {"data": body, "headers": headers}


def _bench_team():
    """A team whose admin has the members page open, connected to the organization the deliveries name."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from integrations.models import GitHubIntegration
    from teams.models import Membership, Team

    user = get_user_model().objects.create_user("bench-admin")
    team = Team.objects.create(name="Bench", slug="bench")
    Membership.objects.create(team=team, user=user, role=Membership.Role.ADMIN)
    integration = GitHubIntegration(team=team, organization_login="bench-org", organization_id=ORGANIZATION_ID)
    integration.access_token = "-"  # never used: a webhook's change needs no call to GitHub  # noqa: S105
    integration.save()
    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}, team.slug


if __name__ == "__main__":
    main()
