"""GitHub's webhook deliveries (docs/architecture.md#webhooks): the signature, the answers,
de-duplication, matching, and each change applied, a member's as a run with trigger `webhook`.
Deliveries are signed here with the test's secret and shaped like GitHub's (checked against its
published payload schemas); the queued message is taken from the real Redis broker and run by the
actor's function in this process."""

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations import words
from integrations.github.client import GitHubClient
from integrations.github.webhook_payloads import KNOWN_EVENTS
from integrations.member_sync import runs, tasks
from integrations.member_sync.sync import sync_members
from integrations.member_sync.tasks import apply_github_webhook, sync_github_members
from integrations.models import (
    ConnectionChange,
    GitHubIntegration,
    GitHubMember,
    MemberChange,
    MemberSyncRun,
    WebhookDelivery,
)
from tests.conftest import GITHUB_DESCRIPTIONS, GITHUB_PLANS, github_webhook_validator
from tests.github_webhooks import (
    NEWCOMER,
    SECRET,
    installation_event,
    member_event,
    organization_event,
    signed,
)

Status = MemberSyncRun.Status
Trigger = MemberSyncRun.Trigger

# On PostgreSQL too (.ci/run): deliveries deduplicated by a unique constraint, SELECT … FOR UPDATE.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def secret(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    return SECRET


def deliver(client, event, payload=None, *, body=None, delivery=None, signature=None, headers=()):
    body = json.dumps(payload).encode() if body is None else body
    sent = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signed(body) if signature is None else signature,
        **dict(headers),
    }
    return client.post("/github/webhook/", data=body, content_type="application/json", headers=sent)


def apply_queued(broker):
    """Run every queued webhook message through the actor's function, as a worker would."""
    consumer = broker.consume(apply_github_webhook.queue_name, prefetch=10, timeout=200)
    applied = 0
    try:
        for message in consumer:
            if message is None:
                break
            apply_github_webhook.fn(*message.args, **message.kwargs)
            consumer.ack(message)
            applied += 1
    finally:
        consumer.close()
    return applied


def queued(broker):
    return broker.client.llen(f"{broker.namespace}:{apply_github_webhook.queue_name}")


def synced(integration):
    run, _ = tasks.request_member_sync(integration=integration, trigger=Trigger.MANUAL)
    sync_github_members.fn(run.pk)
    return run


def nothing_changed(integration):
    integration.refresh_from_db()
    return (
        not WebhookDelivery.objects.exists()
        and not MemberSyncRun.objects.filter(trigger=Trigger.WEBHOOK).exists()
        and integration.last_webhook_at is None
    )


# The payloads are GitHub's.


def ghost_removal():
    """member_removed for an account deleted since: GitHub's payload names no user."""
    payload = member_event("member_removed", 1, NEWCOMER)
    payload["membership"]["user"] = None
    return payload


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("organization-member-added", member_event("member_added", 1, NEWCOMER, role="admin")),
        ("organization-member-removed", member_event("member_removed", 1, NEWCOMER)),
        ("organization-renamed", organization_event("renamed", 1, changes={"login": {"from": "acme-old"}})),
        ("organization-deleted", organization_event("deleted", 1)),
        ("organization-member-removed", ghost_removal()),
    ],
)
@pytest.mark.parametrize("plan", GITHUB_PLANS)
def test_the_test_payloads_validate_against_githubs_webhook_schemas(name, payload, plan):
    github_webhook_validator(name, plan).validate(payload)


@pytest.mark.parametrize("plan", GITHUB_PLANS)
@pytest.mark.parametrize("event", sorted(KNOWN_EVENTS))
def test_the_shapes_known_are_githubs_actions_and_fields(event, plan):
    """What the receiver refuses as another event's body is what GitHub's description allows."""
    description = json.loads((GITHUB_DESCRIPTIONS / f"webhooks.{plan}.json").read_text())
    schemas = description["components"]["schemas"]
    actions, fields = set(), set()
    for name, webhook in description["webhooks"].items():
        if name.startswith(f"{event}-"):
            schema = webhook["post"]["requestBody"]["content"]["application/json"]["schema"]
            schema = schemas[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema
            actions.add(name.removeprefix(f"{event}-").replace("-", "_"))
            fields |= set(schema["properties"])

    assert (actions, fields) == tuple(set(known) for known in KNOWN_EVENTS[event])


# Authentication.


def test_a_wrong_signature_is_refused_and_changes_nothing(client, secret, integration, broker):
    payload = member_event("member_added", integration.organization_id, NEWCOMER)
    response = deliver(client, "organization", payload, signature=signed(json.dumps(payload).encode(), "not-it"))

    assert response.status_code == 401
    assert nothing_changed(integration)
    assert queued(broker) == 0
    assert not GitHubMember.objects.exists()


def test_a_missing_signature_is_refused(client, secret, integration, broker):
    payload = member_event("member_added", integration.organization_id, NEWCOMER)
    response = deliver(client, "organization", payload, signature="")

    assert response.status_code == 401
    assert nothing_changed(integration)
    assert queued(broker) == 0


def test_a_signature_over_another_body_is_refused(client, secret, integration, broker):
    payload = member_event("member_added", integration.organization_id, NEWCOMER)
    response = deliver(client, "organization", payload, signature=signed(b"{}"))

    assert response.status_code == 401
    assert nothing_changed(integration)


def test_without_a_secret_every_delivery_is_refused(client, settings, integration, broker):
    settings.GITHUB_WEBHOOK_SECRET = ""
    payload = member_event("member_added", integration.organization_id, NEWCOMER)
    response = deliver(client, "organization", payload, signature=signed(json.dumps(payload).encode(), ""))

    assert response.status_code == 401
    assert response.content.decode() == words.WEBHOOKS_NOT_CONFIGURED
    assert nothing_changed(integration)


def test_the_webhook_needs_no_session_or_csrf_token_and_takes_only_posts(secret, integration, broker):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = deliver(strict, "organization", member_event("member_added", integration.organization_id, NEWCOMER))

    assert response.status_code == 202
    assert "sessionid" not in response.cookies
    assert strict.get("/github/webhook/").status_code == 405


# Answers to what is not applied.


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\x00", b"[" * 100_000, b"", b'"a string"', b"[1, 2]"])
def test_a_signed_body_that_is_not_a_json_object_gets_400(client, secret, integration, broker, body):
    response = deliver(client, "organization", body=body)

    assert response.status_code == 400
    assert nothing_changed(integration)


def test_ping_is_answered(client, secret, integration, broker):
    response = deliver(client, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1})

    assert response.status_code == 200
    assert queued(broker) == 0


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("push", {"ref": "refs/heads/main"}),
        ("team", {"action": "deleted", "team": {"id": 5, "slug": "devs"}, "organization": {"id": 1}}),
        ("organization", organization_event("member_invited", 1, invitation={"id": 7}, user=None)),
        ("installation", installation_event("created", 42)),
    ],
)
def test_an_event_or_action_not_applied_is_answered_and_ignored(client, secret, integration, broker, event, payload):
    response = deliver(client, event, payload)

    assert response.status_code == 200
    assert nothing_changed(integration)
    assert queued(broker) == 0


@pytest.mark.parametrize(
    ("event", "damage"),
    [
        ("organization", lambda payload: payload.pop("membership")),
        ("organization", lambda payload: payload["membership"]["user"].update(id="9000001")),
        ("organization", lambda payload: payload["membership"]["user"].update(login="<script>")),
        ("organization", lambda payload: payload["organization"].update(id=-1)),
        ("organization", lambda payload: payload.update(action=["member_added"])),
        ("organization", lambda payload: payload.update(action="member_frobnicated")),
        # A team event's `deleted` sent as `organization`: not read as the organization deleted.
        ("organization", lambda payload: (payload.pop("membership"), payload.update(action="deleted", team={"id": 5}))),
        ("installation", lambda payload: payload.update(action="member_added")),
    ],
)
def test_a_body_not_in_the_shape_of_its_event_gets_400_and_changes_nothing(
    client, secret, integration, broker, event, damage
):
    payload = member_event("member_added", integration.organization_id, NEWCOMER)
    damage(payload)
    response = deliver(client, event, payload)

    assert response.status_code == 400
    assert "shape" in response.content.decode()
    assert nothing_changed(integration)
    assert integration.disconnected_at is None
    assert queued(broker) == 0


def test_an_organization_nobody_connected_is_answered_and_ignored(client, secret, integration, broker):
    response = deliver(client, "organization", member_event("member_added", 987_654_321, NEWCOMER, org_login="other"))

    assert response.status_code == 200
    assert "Ignored" in response.content.decode()
    assert nothing_changed(integration)
    assert queued(broker) == 0


def test_a_delivery_without_its_id_gets_400(client, secret, integration, broker):
    payload = member_event("member_added", integration.organization_id, NEWCOMER)
    response = deliver(client, "organization", payload, headers={"X-GitHub-Delivery": ""})

    assert response.status_code == 400
    assert nothing_changed(integration)


# Member events are hints: the member is read from GitHub, and what GitHub says is written.


def about(member) -> dict:
    """Whom a delivery names: a simulated member's id, login and node id."""
    return {"id": member.database_id, "login": member.login, "node_id": member.node_id}


def joined(github):
    """A member who joins acme on GitHub now."""
    (member,), _ = github.add_members("acme", 1)
    return member


def left(github, member):
    github.remove_members("acme", logins=[member.login])
    return member


def test_member_added_stores_the_member_as_github_has_them_in_a_webhook_run(
    client, secret, integration, broker, github
):
    newcomer = joined(github)
    response = deliver(
        client, "organization", member_event("member_added", integration.organization_id, about(newcomer))
    )

    assert response.status_code == 202
    integration.refresh_from_db()
    assert integration.last_webhook_at is not None
    assert apply_queued(broker) == 1
    member = GitHubMember.objects.get(integration=integration, github_id=newcomer.database_id)
    assert (member.login, member.node_id, member.role, member.is_active) == (
        newcomer.login,
        newcomer.node_id,
        newcomer.role.lower(),
        True,
    )
    assert member.avatar_url.startswith(f"{github.url}/avatars/u/{newcomer.database_id}")
    assert member.webhook_changed_at is not None
    run = MemberSyncRun.objects.get()
    assert (run.trigger, run.status, run.members_created, run.total) == (Trigger.WEBHOOK, Status.COMPLETE, 1, 1)
    assert None not in (run.started_at, run.finished_at)
    integration.refresh_from_db()
    assert integration.member_sync_status == Status.COMPLETE
    assert integration.member_sync_result["created"] == 1
    # One call: the member's membership, which says they are a member.
    assert run.api_calls == 1
    assert github.requests == [("GET", f"/orgs/acme/memberships/{newcomer.login}")]


def test_member_added_brings_back_a_member_who_had_left_and_keeps_their_name(
    client, secret, integration, broker, github
):
    newcomer = joined(github)
    GitHubMember.objects.create(
        integration=integration, github_id=newcomer.database_id, login="old-login", name="New Comer",
        email="new@example.com", is_active=False, left_at=timezone.now(),
    )  # fmt: skip
    deliver(client, "organization", member_event("member_added", integration.organization_id, about(newcomer)))
    apply_queued(broker)

    member = GitHubMember.objects.get(github_id=newcomer.database_id)
    assert (member.is_active, member.left_at, member.login) == (True, None, newcomer.login)
    assert (member.name, member.email) == ("New Comer", "new@example.com")
    assert MemberSyncRun.objects.get().members_updated == 1


def test_member_removed_marks_the_member_inactive(client, secret, integration, broker, github):
    synced(integration)
    leaving = left(github, github.org("acme").member(7))
    payload = member_event("member_removed", integration.organization_id, about(leaving))

    assert deliver(client, "organization", payload).status_code == 202
    apply_queued(broker)

    member = GitHubMember.objects.get(github_id=leaving.database_id)
    assert (member.is_active, member.left_at is not None) == (False, True)
    assert GitHubMember.objects.filter(integration=integration, is_active=True).count() == 249
    run = MemberSyncRun.objects.filter(trigger=Trigger.WEBHOOK).get()
    assert (run.status, run.members_deactivated) == (Status.COMPLETE, 1)
    # No membership under that login: the organization's and the account's current names are asked
    # before the member counts as gone.
    assert run.api_calls == 3


def changes_recorded(run):
    return sorted(run.member_changes.values_list("kind", "github_id", "login", "before", "after"))


def test_a_webhook_run_records_the_member_it_added(client, secret, integration, broker, github):
    newcomer = joined(github)
    deliver(client, "organization", member_event("member_added", integration.organization_id, about(newcomer)))
    apply_queued(broker)

    run = MemberSyncRun.objects.get()
    assert changes_recorded(run) == [("added", newcomer.database_id, newcomer.login, "", newcomer.login)]
    assert run.change_counts == {"added": 1}


def test_a_webhook_run_records_a_member_back_under_a_new_login(client, secret, integration, broker, github):
    newcomer = joined(github)
    GitHubMember.objects.create(
        integration=integration, github_id=newcomer.database_id, login="old-login", role=newcomer.role.lower(),
        is_active=False, left_at=timezone.now(),
    )  # fmt: skip
    deliver(client, "organization", member_event("member_added", integration.organization_id, about(newcomer)))
    apply_queued(broker)

    kinds = [kind for kind, *_ in changes_recorded(MemberSyncRun.objects.get())]
    assert kinds == ["login_changed", "profile_changed", "reactivated"]
    login_change = MemberChange.objects.get(kind="login_changed")
    assert (login_change.before, login_change.after) == ("old-login", newcomer.login)


def test_a_webhook_run_records_the_member_who_left(client, secret, integration, broker, github):
    synced(integration)
    leaving = left(github, github.org("acme").member(7))
    deliver(client, "organization", member_event("member_removed", integration.organization_id, about(leaving)))
    apply_queued(broker)

    run = MemberSyncRun.objects.filter(trigger=Trigger.WEBHOOK).get()
    assert changes_recorded(run) == [("deactivated", leaving.database_id, leaving.login, "", "")]


def test_a_webhook_that_changes_nothing_records_nothing(client, secret, integration, broker, github):
    synced(integration)
    staying = github.org("acme").member(7)
    deliver(client, "organization", member_event("member_added", integration.organization_id, about(staying)))
    apply_queued(broker)

    assert not MemberChange.objects.filter(run__trigger=Trigger.WEBHOOK).exists()


def test_a_member_added_that_arrives_after_their_removal_leaves_them_removed(
    client, secret, integration, broker, github
):
    newcomer = joined(github)
    added = member_event("member_added", integration.organization_id, about(newcomer))
    left(github, newcomer)
    removed = member_event("member_removed", integration.organization_id, about(newcomer))
    # GitHub guarantees no order: the removal comes first, the addition late.
    deliver(client, "organization", removed)
    deliver(client, "organization", added)
    assert apply_queued(broker) == 2

    assert not GitHubMember.objects.get(github_id=newcomer.database_id).is_active
    assert not GitHubMember.objects.filter(github_id=newcomer.database_id, is_active=True).exists()


def test_the_same_body_under_a_new_delivery_id_is_answered_and_not_applied(client, secret, integration, broker, github):
    newcomer = joined(github)
    payload = member_event("member_added", integration.organization_id, about(newcomer))
    first = deliver(client, "organization", payload)
    replayed = deliver(client, "organization", payload)

    assert (first.status_code, replayed.status_code) == (202, 200)
    assert "Already received" in replayed.content.decode()
    assert apply_queued(broker) == 1
    assert WebhookDelivery.objects.count() == 1


def test_a_replayed_member_added_does_not_bring_back_someone_who_left(client, secret, integration, broker, github):
    newcomer = joined(github)
    payload = member_event("member_added", integration.organization_id, about(newcomer))
    deliver(client, "organization", payload)
    apply_queued(broker)
    left(github, newcomer)
    deliver(client, "organization", member_event("member_removed", integration.organization_id, about(newcomer)))
    apply_queued(broker)
    # Days later the body is sent again, after the deliveries were forgotten: it is only a hint.
    WebhookDelivery.objects.all().delete()
    deliver(client, "organization", payload)
    apply_queued(broker)

    assert not GitHubMember.objects.get(github_id=newcomer.database_id).is_active


def test_member_removed_for_someone_still_in_the_organization_keeps_them_active(
    client, secret, integration, broker, github
):
    synced(integration)
    staying = github.org("acme").member(9)
    deliver(client, "organization", member_event("member_removed", integration.organization_id, about(staying)))
    apply_queued(broker)

    assert GitHubMember.objects.get(github_id=staying.database_id).is_active
    run = MemberSyncRun.objects.filter(trigger=Trigger.WEBHOOK).get()
    assert (run.status, run.members_deactivated, run.members_unchanged) == (Status.COMPLETE, 0, 1)


def test_a_member_renamed_since_the_delivery_is_found_by_their_id(client, secret, integration, broker, github):
    newcomer = joined(github)
    payload = member_event("member_added", integration.organization_id, about(newcomer))
    github.org("acme").rename_member(newcomer.login, "renamed-since")
    deliver(client, "organization", payload)
    apply_queued(broker)

    member = GitHubMember.objects.get(github_id=newcomer.database_id)
    assert (member.login, member.is_active) == ("renamed-since", True)


def test_a_member_removed_whose_account_was_deleted_is_deactivated_by_id(client, secret, integration, broker, github):
    synced(integration)
    leaving = left(github, github.org("acme").member(11))
    # The delivery names a login nobody has any more.
    payload = member_event("member_removed", integration.organization_id, {**about(leaving), "login": "ghost-of-it"})
    deliver(client, "organization", payload)
    apply_queued(broker)

    assert not GitHubMember.objects.get(github_id=leaving.database_id).is_active


def test_a_removal_that_names_no_user_asks_for_a_full_sync_which_finds_who_left(
    client, secret, integration, broker, github
):
    synced(integration)
    leaving = left(github, github.org("acme").member(13))
    payload = ghost_removal()
    payload["organization"]["id"] = integration.organization_id
    assert deliver(client, "organization", payload).status_code == 202
    apply_queued(broker)

    run = MemberSyncRun.objects.filter(trigger=Trigger.WEBHOOK).get()
    assert run.status == Status.QUEUED
    sync_github_members.fn(run.pk)
    assert not GitHubMember.objects.get(github_id=leaving.database_id).is_active
    assert MemberSyncRun.objects.get(pk=run.pk).members_deactivated == 1


def test_the_same_delivery_twice_applies_once(client, secret, integration, broker, github):
    payload = member_event("member_added", integration.organization_id, about(joined(github)))
    first = deliver(client, "organization", payload, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    second = deliver(client, "organization", payload, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")

    assert (first.status_code, second.status_code) == (202, 200)
    assert "Already received" in second.content.decode()
    assert apply_queued(broker) == 1
    assert MemberSyncRun.objects.count() == 1
    assert WebhookDelivery.objects.count() == 1


def test_an_organization_event_applies_to_every_team_that_connected_it(
    client, secret, integration, other_team, charlie, broker, github
):
    # Globex connected the same organization by another token and under a login it had before: matched
    # by its id, not its login.
    other = GitHubIntegration(
        team=other_team, organization_login="acme-before", organization_id=integration.organization_id,
        connected_by=charlie,
    )  # fmt: skip
    other.access_token = github.issue_token()
    other.save()
    newcomer = joined(github)
    deliver(client, "organization", member_event("member_added", integration.organization_id, about(newcomer)))
    apply_queued(broker)

    assert set(GitHubMember.objects.filter(github_id=newcomer.database_id).values_list("integration", flat=True)) == {
        integration.pk,
        other.pk,
    }
    assert MemberSyncRun.objects.filter(trigger=Trigger.WEBHOOK, status=Status.COMPLETE).count() == 2


# The organization and the App installation.


def test_a_renamed_organization_takes_the_login_github_gives_it_now(client, secret, integration, broker, github):
    github.org("acme").rename("acme-corp")
    first = organization_event("renamed", integration.organization_id, login="acme-corp")
    github.org("acme-corp").rename("acme-inc")
    # The first rename's delivery arrives after the second's.
    deliver(client, "organization", organization_event("renamed", integration.organization_id, login="acme-inc"))
    deliver(client, "organization", first)
    apply_queued(broker)

    integration.refresh_from_db()
    assert integration.organization_login == "acme-inc"


def test_a_deleted_organization_disconnects_its_integration(client, secret, integration, broker, github):
    github.delete_org("acme")
    deliver(client, "organization", organization_event("deleted", integration.organization_id))
    apply_queued(broker)

    integration.refresh_from_db()
    assert integration.disconnected_at is not None
    assert "acme" in integration.disconnected_reason


def test_a_deletion_github_does_not_confirm_leaves_the_integration_connected(client, secret, integration, broker):
    deliver(client, "organization", organization_event("deleted", integration.organization_id))
    apply_queued(broker)

    integration.refresh_from_db()
    assert integration.disconnected_at is None


@pytest.fixture
def app_integration(integration):
    integration.connection, integration.installation_id = GitHubIntegration.Connection.APP, 42
    integration.save()
    return integration


def test_an_uninstalled_app_disconnects_the_integration_and_says_why(client, secret, app_integration, broker):
    assert deliver(client, "installation", installation_event("deleted", 42)).status_code == 202
    apply_queued(broker)

    app_integration.refresh_from_db()
    assert app_integration.disconnected_at is not None
    assert app_integration.disconnected_reason == (
        "The GitHub App was uninstalled from acme. Install it again to keep members in sync."
    )
    assert app_integration.last_webhook_at is not None


def test_an_uninstall_is_recorded_once_in_the_connections_history(client, secret, app_integration, broker):
    deliver(client, "installation", installation_event("deleted", 42))
    deliver(client, "installation", installation_event("deleted", 42), delivery=str(uuid.uuid4()))
    apply_queued(broker)

    change = ConnectionChange.objects.get()
    assert (change.kind, change.by) == ("disconnected", None)
    assert change.after == "The GitHub App was uninstalled from acme. Install it again to keep members in sync."


def test_a_suspended_installation_shows_until_it_is_unsuspended(client, secret, app_integration, broker):
    deliver(client, "installation", installation_event("suspend", 42))
    apply_queued(broker)
    app_integration.refresh_from_db()
    assert app_integration.installation_suspended_at is not None

    deliver(client, "installation", installation_event("unsuspend", 42))
    apply_queued(broker)
    app_integration.refresh_from_db()
    assert app_integration.installation_suspended_at is None
    assert app_integration.disconnected_at is None


@pytest.mark.parametrize("action", ["unsuspend", "new_permissions_accepted"])
def test_an_installation_that_may_read_again_is_synced_at_once(client, secret, app_integration, broker, action):
    deliver(client, "installation", installation_event(action, 42))
    apply_queued(broker)

    run = MemberSyncRun.objects.get()
    assert (run.trigger, run.status) == (Trigger.WEBHOOK, Status.QUEUED)
    assert broker.client.llen(f"{broker.namespace}:{sync_github_members.queue_name}") == 1


def test_an_installation_nobody_connected_is_ignored(client, secret, app_integration, broker):
    response = deliver(client, "installation", installation_event("deleted", 4242))

    assert response.status_code == 200
    assert queued(broker) == 0


def test_member_changes_no_longer_apply_to_a_disconnected_integration(client, secret, integration, broker, github):
    GitHubIntegration.objects.filter(pk=integration.pk).update(disconnected_at=timezone.now())
    deliver(client, "organization", member_event("member_added", integration.organization_id, about(joined(github))))
    apply_queued(broker)

    assert not GitHubMember.objects.exists()


def test_deliveries_are_remembered_longer_than_github_lets_an_owner_redeliver(
    client, secret, integration, broker, github
):
    now = timezone.now()
    # Enterprise Server lets an owner redeliver for 7 days, github.com for 3.
    WebhookDelivery.objects.create(delivery_id="old", event="organization", received_at=now - timedelta(days=9))
    WebhookDelivery.objects.create(delivery_id="week", event="organization", received_at=now - timedelta(days=7))
    deliver(client, "organization", member_event("member_added", integration.organization_id, about(joined(github))))
    apply_queued(broker)

    assert not WebhookDelivery.objects.filter(delivery_id="old").exists()
    assert WebhookDelivery.objects.filter(delivery_id="week").exists()
    assert WebhookDelivery.objects.count() == 2


# A webhook and a full sync at once.


def test_a_webhook_during_a_full_syncs_read_survives_that_sync(client, secret, integration, broker, github):
    synced(integration)
    acme = github.org("acme")
    leaving = acme.member(3)  # on the first page the full sync reads
    removed = member_event("member_removed", integration.organization_id, about(leaving))
    newcomer = joined(github)
    added = member_event("member_added", integration.organization_id, about(newcomer))

    run, _ = tasks.request_member_sync(integration=integration, trigger=Trigger.MANUAL)
    run = runs.start_run(run.pk)
    delivered = []

    def webhooks_arrive_while_reading(progress):
        if not delivered:
            # `leaving` leaves once their page is read.
            left(github, leaving)
            delivered.append(deliver(client, "organization", removed).status_code)
            delivered.append(deliver(client, "organization", added).status_code)
            assert apply_queued(broker) == 2
            assert not GitHubMember.objects.get(github_id=leaving.database_id).is_active

    with GitHubClient(integration.access_token) as github_client:
        result = sync_members(run=run, client=github_client, on_progress=webhooks_arrive_while_reading)
    runs.complete_run(run, result)

    assert delivered == [202, 202]
    assert not GitHubMember.objects.get(github_id=leaving.database_id).is_active
    assert GitHubMember.objects.get(github_id=newcomer.database_id).is_active
    assert (result.updated, result.deactivated) == (0, 0)
    # Applied while the full sync was under way: no run of their own, the full sync's is the one,
    # and it records them.
    assert not MemberSyncRun.objects.filter(trigger=Trigger.WEBHOOK).exists()
    run = MemberSyncRun.objects.get(pk=run.pk)
    assert run.status == Status.COMPLETE
    assert run.change_counts == {"added": 1, "deactivated": 1}


def test_a_full_sync_that_began_after_a_webhook_applies_what_it_read(client, secret, integration, broker, github):
    synced(integration)
    newcomer = joined(github)
    deliver(client, "organization", member_event("member_added", integration.organization_id, about(newcomer)))
    apply_queued(broker)

    # GitHub no longer lists the newcomer when a later sync reads: the later snapshot wins.
    left(github, newcomer)
    synced(integration)

    assert not GitHubMember.objects.get(github_id=newcomer.database_id).is_active


@pytest.fixture
def published(monkeypatch):
    """The member-sync events the run service publishes, as (run, status, trigger)."""
    events = []
    monkeypatch.setattr(runs, "publish_member_sync", lambda run: events.append((run.pk, run.status, run.trigger)))
    return events


def test_a_webhook_run_is_published_like_any_run(client, secret, integration, broker, published, github):
    deliver(client, "organization", member_event("member_added", integration.organization_id, about(joined(github))))
    apply_queued(broker)

    run = MemberSyncRun.objects.get()
    assert published == [(run.pk, status, Trigger.WEBHOOK) for status in ("queued", "syncing", "complete")]


def test_a_webhook_while_a_run_is_under_way_is_applied_at_once_and_the_run_published(
    client, secret, integration, broker, published, github
):
    full_sync, _ = tasks.request_member_sync(integration=integration, trigger=Trigger.MANUAL)
    published.clear()
    newcomer = joined(github)
    deliver(client, "organization", member_event("member_added", integration.organization_id, about(newcomer)))
    apply_queued(broker)

    assert GitHubMember.objects.get(github_id=newcomer.database_id).is_active
    assert list(MemberSyncRun.objects.values_list("pk", flat=True)) == [full_sync.pk]
    assert published == [(full_sync.pk, "queued", Trigger.MANUAL)]


def test_a_change_arriving_while_runs_start_and_end_at_once_is_applied_without_a_run(integration, broker, monkeypatch):
    applied = []

    def refuse(*args, **kwargs):
        raise runs.SyncAlreadyChanging

    finished = MemberSyncRun.objects.create(integration=integration, trigger="manual", status=Status.COMPLETE)
    monkeypatch.setattr(runs, "create_run", refuse)

    assert runs.run_webhook_change(integration=integration, apply=applied.append) is None
    assert applied == [finished]


def test_a_change_that_could_not_be_applied_ends_its_run_as_unexpected(integration, broker):
    def broken(run):
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        runs.run_webhook_change(integration=integration, apply=broken)

    run = MemberSyncRun.objects.get()
    assert (run.status, run.error, run.error_kind) == (Status.ERROR, words.WEBHOOK_FAILED, "unexpected")


def test_an_unreachable_queue_gets_503_and_the_delivery_is_not_remembered(client, secret, integration, broker):
    from dramatiq.brokers.redis import RedisBroker

    payload = member_event("member_added", integration.organization_id, NEWCOMER)
    original, apply_github_webhook.broker = apply_github_webhook.broker, RedisBroker(url="redis://127.0.0.1:1/0")
    try:
        refused = deliver(client, "organization", payload, delivery="d1")
    finally:
        apply_github_webhook.broker = original
    redelivered = deliver(client, "organization", payload, delivery="d1")

    # GitHub's redelivery, once the queue is back, is applied rather than answered "already received".
    assert (refused.status_code, redelivered.status_code) == (503, 202)
    assert apply_queued(broker) == 1


def test_a_member_whose_role_github_does_not_say_is_stored_with_an_unknown_role(
    client, secret, integration, broker, github
):
    newcomer = joined(github)
    github.inject("null_roles", logins=[newcomer.login])
    deliver(client, "organization", member_event("member_added", integration.organization_id, about(newcomer)))
    apply_queued(broker)

    member = GitHubMember.objects.get(github_id=newcomer.database_id)
    assert (member.role, member.get_role_display(), member.is_active) == ("unknown", "Unknown role", True)
