"""Benchmark of webhook deliveries with the real processes (uvicorn, a rundramatiq worker, Redis) and
the GitHub simulator at 20 ms of latency: how fast a delivery is answered; how soon after it was
sent the member it names is read from GitHub and the change reaches a team's open members page (the
`complete` event of its webhook run, on which the page reloads its member list); and a webhook
healing pass over 1,000 deliveries of which 100 were lost.

Each delivery is GitHub's organization.member_added for a member who just joined on the simulator,
signed with the bench's secret, under an id of its own: the actor reads that member's membership
(one GitHub call) before it writes. A few deliveries first warm the processes up and are not
counted: a server that receives webhooks has long been running."""

import json
import os
import time
import uuid

import requests

from bench.support import bench_database, control, github_simulator, ms, print_bars, print_table, timings_row

DELIVERIES = 50
WARM_UP = 3
LATENCY_MS = 20
ORGANIZATION = "bench-org"
SECRET = "bench-only-webhook-secret"  # noqa: S105
HEALING_DELIVERIES = 1_000
HEALING_LOST = 100


def main():
    with bench_database() as env, github_simulator(env, {ORGANIZATION: 100}) as simulator:
        registration = requests.get(f"{simulator}/_simulator/app", timeout=10).json()
        env.update(
            GITHUB_WEBHOOK_SECRET=SECRET,
            GITHUB_API_URL=simulator,
            GITHUB_WEB_URL=simulator,
            GITHUB_GRAPHQL_URL=f"{simulator}/graphql",
            GITHUB_APP_ID=str(registration["id"]),
            GITHUB_APP_SLUG=registration["slug"],
            GITHUB_APP_PRIVATE_KEY=registration["private_key"],
            GITHUB_APP_CLIENT_ID=registration["client_id"],
            GITHUB_APP_CLIENT_SECRET=registration["client_secret"],
            GITHUB_WEBHOOK_HEALING_SECONDS="3600",
        )
        os.environ.update(env)
        import django

        django.setup()
        control(simulator, "latency", {"ms": LATENCY_MS})
        rows = [*_deliveries(env, simulator)]
        healing_row = _healing_pass(simulator)

    print_table(
        f"Webhook deliveries (real uvicorn, rundramatiq, Redis; GitHub simulator at {LATENCY_MS} ms)",
        ["measure", "n", "p50 ms", "p99 ms", "max ms"],
        rows,
    )
    print_table(
        f"Webhook healing pass ({LATENCY_MS} ms latency)",
        ["deliveries listed", "lost", "redelivered", "GitHub calls", "wall s"],
        [healing_row],
    )
    answered, visible = rows
    print_bars(
        [
            ("webhook delivery answered p50 < 20 ms", answered["p50 ms"] < 20, f"{answered['p50 ms']} ms"),
            (
                "delivery to the member re-read and pushed to an open page p50 < 150 ms",
                visible["p50 ms"] < 150,
                f"{visible['p50 ms']} ms",
            ),
            (
                f"healing pass over {HEALING_DELIVERIES:,} deliveries redelivers exactly the {HEALING_LOST} lost",
                healing_row["redelivered"] == HEALING_LOST,
                f"{healing_row['redelivered']} redelivered, {healing_row['GitHub calls']} calls",
            ),
            ("healing pass over 1,000 deliveries < 5 s", healing_row["wall s"] < 5, f"{healing_row['wall s']} s"),
        ]
    )


def _deliveries(env, simulator):
    # Imported after setup: they need Django's settings and apps.
    from bench.stream_clients import EventStream
    from tests.stack import web_server, worker

    organization = requests.get(f"{simulator}/_simulator/orgs/{ORGANIZATION}", timeout=10).json()
    token = control(simulator, "tokens", {"scopes": ["read:org"]})["token"]
    cookies, team_slug = _bench_team(organization["id"], token)
    with web_server(env) as web, worker(env):
        stream = EventStream(f"{web.url}/t/{team_slug}/events/", cookies=cookies)
        stream.next("stream-open")
        http = requests.Session()
        answer_times, visible_times = [], []
        for number in range(WARM_UP + DELIVERIES):
            (newcomer,) = control(simulator, f"orgs/{ORGANIZATION}/changes", {"add": 1})["added"]
            started = time.time()
            response = http.post(f"{web.url}/github/webhook/", **_delivery(organization["id"], newcomer), timeout=10)
            answered = time.time()
            assert response.status_code == 202, (response.status_code, response.text)
            # Deliveries go one at a time: the next webhook run to complete is this one's.
            stream.next(where=lambda data: data["trigger"] == "webhook" and data["status"] == "complete")
            if number >= WARM_UP:
                answer_times.append(answered - started)
                visible_times.append(stream.last_received_at - started)
        stream.close()
    return [
        timings_row("delivery answered (POST /github/webhook/)", answer_times),
        timings_row("delivery sent → member re-read → complete event on an open page", visible_times),
    ]


def _delivery(organization_id, member):
    """organization.member_added of a member, as GitHub sends it."""
    from tests.github_webhooks import member_event, signed

    about = {"id": member["database_id"], "login": member["login"], "node_id": member["node_id"]}
    body = json.dumps(member_event("member_added", organization_id, about, org_login=ORGANIZATION)).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "organization",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signed(body, SECRET),
    }
    return {"data": body, "headers": headers}


def _healing_pass(simulator):
    """1,000 deliveries to a receiver that answers at once, 100 of them lost; then one pass."""
    from integrations.member_sync import healing
    from tests.github_webhooks import Receiver

    receiver = Receiver()  # answers at once: the pass is measured, not the product's apply
    try:
        control(simulator, "app", {"webhook_url": receiver.url, "webhook_secret": SECRET})
        control(simulator, "latency", {"ms": 0})  # making the deliveries is not what is measured
        control(simulator, "app/installations", {"org": ORGANIZATION})
        _wait_for_attempts(simulator, 1)  # installation.created
        control(simulator, "deliveries/lose", {"times": HEALING_LOST})
        control(simulator, f"orgs/{ORGANIZATION}/changes", {"add": HEALING_DELIVERIES - 1})
        _wait_for_attempts(simulator, HEALING_DELIVERIES)
        control(simulator, "latency", {"ms": LATENCY_MS})
        before = requests.get(f"{simulator}/_simulator/stats", timeout=10).json()["requests"]
        started = time.perf_counter()
        result = healing.heal_webhooks()
        wall = time.perf_counter() - started
        calls = requests.get(f"{simulator}/_simulator/stats", timeout=10).json()["requests"] - before
    finally:
        receiver.close()
    return {
        "deliveries listed": result.deliveries_seen,
        "lost": HEALING_LOST,
        "redelivered": result.redelivered_count,
        "GitHub calls": calls,
        "wall s": round(wall, 2),
        "error": result.error,
        "per call ms": ms(wall / max(calls, 1)),
    }


def _wait_for_attempts(simulator, count, timeout=120):
    deadline = time.time() + timeout
    while (
        sum(
            1
            for delivery in requests.get(f"{simulator}/_simulator/deliveries", timeout=10).json()
            if delivery["attempts"]
        )
        < count
    ):
        if time.time() > deadline:
            raise TimeoutError(f"the simulator did not attempt {count} deliveries")
        time.sleep(0.2)


def _bench_team(organization_id, token):
    """A team whose admin has the members page open, connected to the organization the deliveries name."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from integrations.models import GitHubIntegration
    from teams.models import Membership, Team

    user = get_user_model().objects.create_user("bench-admin")
    team = Team.objects.create(name="Bench", slug="bench")
    Membership.objects.create(team=team, user=user, role=Membership.Role.ADMIN)
    integration = GitHubIntegration(team=team, organization_login=ORGANIZATION, organization_id=organization_id)
    integration.access_token = token
    integration.save()
    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}, team.slug


if __name__ == "__main__":
    main()
