"""The notification settings page (github_notifications): admins only; the URL and a write-only
secret (Save), Send test, and the delivery log with Redeliver (docs/interfaces.md#notifications)."""

import logging
import re

import pytest
from django.test import Client

from integrations import words
from integrations.models import GitHubIntegration, MemberSyncRun, NotificationDelivery, NotificationEndpoint
from integrations.notifications import outbox
from integrations.notifications.signing import secret_problem
from tests.notifications import SECRET, Receiver, endpoint_for, resolve_as, work_off

pytestmark = pytest.mark.postgres

PAGE = "/t/acme/github/notifications/"
PUBLIC = "93.184.215.14"


@pytest.fixture
def production_rules(settings, monkeypatch):
    """Refusals as in production, names resolved by a fake DNS: hooks.example.com is public."""
    settings.NOTIFICATIONS_ALLOW_PRIVATE_URLS = False
    settings.ALLOWED_HOSTS = ["testserver", "members.example.com"]
    settings.SITE_URL = "https://members.example.com"
    return resolve_as(monkeypatch, {"hooks.example.com": [PUBLIC], "internal.example.com": ["10.0.0.5"]})


@pytest.fixture
def admin_client(alice, team):
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def receiver(settings):
    settings.NOTIFICATIONS_ALLOW_PRIVATE_URLS = True
    receiver = Receiver()
    yield receiver
    receiver.close()


def save(client, **fields):
    return client.post(PAGE, {"url": "", "secret": "", **fields})


def errors_of(response):
    return re.findall(r'<ul class="errorlist" id="(\w+)-errors"><li>([^<]*)</li>', response.content.decode())


def test_it_requires_admin(client, team, bob, charlie):
    assert client.get(PAGE).status_code == 302  # to the login page
    client.force_login(bob)  # a plain member
    assert client.get(PAGE).status_code == 403
    assert save(client, url="https://hooks.example.com/x", secret=SECRET).status_code == 403
    assert client.post(f"{PAGE}test/").status_code == 403
    client.force_login(charlie)  # not of the team
    assert client.get(PAGE).status_code == 404
    assert NotificationEndpoint.objects.count() == 0


def test_redelivering_is_for_the_teams_admins_and_its_own_deliveries(client, team, bob, other_team, charlie):
    delivery = outbox.new_delivery(endpoint_for(team, "https://hooks.example.com/x"), "test", {})
    client.force_login(bob)
    assert client.post(f"{PAGE}deliveries/{delivery.pk}/redeliver/").status_code == 403
    client.force_login(charlie)
    assert client.post(f"/t/globex/github/notifications/deliveries/{delivery.pk}/redeliver/").status_code == 404
    assert NotificationDelivery.objects.count() == 1


def test_an_admin_saves_a_url_and_a_secret_stored_encrypted(admin_client, team, production_rules):
    response = save(admin_client, url="https://hooks.example.com/member-sync", secret=SECRET)

    assert response.status_code == 302
    endpoint = NotificationEndpoint.objects.get(team=team)
    assert (endpoint.url, endpoint.secret) == ("https://hooks.example.com/member-sync", SECRET)
    assert SECRET not in endpoint.encrypted_secret
    page = admin_client.get(PAGE).content.decode()
    assert "Notifications will be sent to https://hooks.example.com/member-sync." in page
    assert 'value="https://hooks.example.com/member-sync"' in page


def test_a_blank_secret_keeps_the_stored_one(admin_client, team, production_rules):
    endpoint_for(team, "https://hooks.example.com/old")

    assert save(admin_client, url="https://hooks.example.com/new").status_code == 302

    endpoint = NotificationEndpoint.objects.get(team=team)
    assert (endpoint.url, endpoint.secret) == ("https://hooks.example.com/new", SECRET)


def test_a_first_endpoint_needs_a_secret(admin_client, production_rules):
    response = save(admin_client, url="https://hooks.example.com/member-sync")

    assert response.status_code == 400
    assert errors_of(response) == [("secret", words.SIGNING_KEY_REQUIRED.replace("'", "&#x27;"))]
    assert NotificationEndpoint.objects.count() == 0


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("hunter2", words.SIGNING_KEY_FORM),
        ("whsec_c2hvcnQ=", words.SIGNING_KEY_LENGTH),
        ("whsec_%%%", words.SIGNING_KEY_FORM),
    ],
)
def test_a_secret_not_in_the_specifications_form_gets_a_form_error(admin_client, production_rules, secret, problem):
    response = save(admin_client, url="https://hooks.example.com/member-sync", secret=secret)

    assert response.status_code == 400
    assert errors_of(response) == [("secret", problem)]
    assert secret not in response.content.decode()  # never rendered back, even wrong


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/member-sync", words.URL_NOT_HTTPS),
        ("https://127.0.0.1/hook", "resolves to 127.0.0.1"),
        ("https://10.2.3.4/hook", "resolves to 10.2.3.4"),
        ("https://169.254.169.254/latest/meta-data/", "resolves to 169.254.169.254"),
        ("https://[::1]:8443/hook", "resolves to ::1"),
        ("https://internal.example.com/hook", "internal.example.com resolves to 10.0.0.5"),
        ("https://members.example.com/github/webhook/", words.URL_OWN_SITE),
        ("https://user:pass@hooks.example.com/hook", words.URL_WITH_USERINFO),
        ("https://nowhere.invalid/hook", "nowhere.invalid could not be resolved"),
        ("not a url", words.URL_NOT_VALID),
        ("https://hooks.example.com:99999/", words.URL_NOT_VALID),
        ("https://hooks.example.com/\x00", "Null characters are not allowed."),
        ("https://hooks.example.com/a b", words.URL_NOT_VALID),
        ("https://hooks.example.com/" + "x" * 2001, "at most 2000 characters"),
    ],
)
def test_a_refused_url_gets_a_clear_form_error(admin_client, production_rules, url, problem):
    response = save(admin_client, url=url, secret=SECRET)

    assert response.status_code == 400
    [(field, error)] = errors_of(response)
    assert field == "url"
    assert problem.replace("'", "&#x27;") in error
    assert NotificationEndpoint.objects.count() == 0


def test_saving_an_empty_url_turns_notifications_off(admin_client, team, production_rules):
    endpoint_for(team, "https://hooks.example.com/x")

    response = save(admin_client)

    assert response.status_code == 302
    assert NotificationEndpoint.objects.count() == 0
    assert words.NOTIFICATIONS_OFF in admin_client.get(PAGE).content.decode()


def test_the_page_offers_a_new_secret_at_each_render(admin_client):
    def offered():
        return re.search(r'id="new-secret" value="([^"]+)"', admin_client.get(PAGE).content.decode())[1]

    first, second = offered(), offered()

    assert first != second
    assert secret_problem(first) == secret_problem(second) == ""
    assert NotificationEndpoint.objects.count() == 0  # stored only once saved


def test_the_secret_field_is_a_password_input_never_filled(admin_client, team):
    endpoint_for(team, "https://hooks.example.com/x")

    page = admin_client.get(PAGE).content.decode()

    assert re.search(r'<input type="password" name="secret"[^>]*>', page)
    assert SECRET not in page
    assert "A secret is stored. Leave this blank to keep it." in page


@pytest.mark.services  # the members page reads its stream's current event id from Redis
def test_the_members_page_links_to_notifications_for_admins_only(client, alice, bob, team):
    GitHubIntegration.objects.create(team=team, organization_login="acme")
    link = f'href="{PAGE}">Notifications</a>'
    client.force_login(alice)
    assert link in client.get("/t/acme/github/members/").content.decode()
    client.force_login(bob)
    assert link not in client.get("/t/acme/github/members/").content.decode()


@pytest.mark.services
def test_send_test_delivers_a_signed_test_message_at_once_and_shows_the_answer(admin_client, integration, receiver):
    run = MemberSyncRun.objects.create(
        integration=integration, trigger="manual", status="complete", change_counts={"added": 250}
    )
    endpoint_for(integration.team, receiver.url)

    response = admin_client.post(f"{PAGE}test/", follow=True)

    [received] = receiver.received
    message = received.verified()
    assert message["type"] == "test"
    assert message["data"]["run"] == run.pk
    assert message["data"]["changes"] == {"added": 250}
    page = response.content.decode()
    assert "The test was delivered: HTTP 200." in page
    assert '<tr data-type="test" data-status="delivered" data-attempts="1"' in page


@pytest.mark.services
def test_send_test_shows_a_refusal_and_is_not_retried(admin_client, team, receiver, broker):
    endpoint_for(team, receiver.url)
    receiver.answer_with(500)

    response = admin_client.post(f"{PAGE}test/", follow=True)

    assert "The test was not delivered: HTTP 500: Receiver says no 500" in response.content.decode()
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
    assert work_off(broker) == []


@pytest.mark.services
def test_redeliver_sends_the_same_message_again(
    admin_client, team, receiver, broker, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(team, receiver.url)
    admin_client.post(f"{PAGE}test/")
    original = NotificationDelivery.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"{PAGE}deliveries/{original.pk}/redeliver/", follow=True)
    work_off(broker)

    assert words.REDELIVERY_QUEUED in response.content.decode()
    first, again = receiver.received
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == original.message_id
    assert again.body == first.body
    again.verified()
    statuses = list(endpoint.deliveries.order_by("pk").values_list("status", "attempts"))
    assert statuses == [("delivered", 1), ("delivered", 1)]


@pytest.mark.services
def test_the_secret_is_never_in_a_page_a_log_or_the_admin(
    admin_client, team, receiver, caplog, django_user_model, django_capture_on_commit_callbacks, broker
):
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        save(admin_client, url=receiver.url, secret=SECRET)
        admin_client.post(f"{PAGE}test/")
        delivery = NotificationDelivery.objects.get()
        admin_client.post(f"{PAGE}deliveries/{delivery.pk}/redeliver/")
    work_off(broker)
    endpoint = NotificationEndpoint.objects.get()
    staff = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    operator = Client()
    operator.force_login(staff)

    seen = [
        admin_client.get(PAGE).content.decode(),
        operator.get("/admin/integrations/notificationendpoint/").content.decode(),
        operator.get(f"/admin/integrations/notificationendpoint/{endpoint.pk}/change/").content.decode(),
        operator.get(f"/admin/integrations/notificationdelivery/{delivery.pk}/change/").content.decode(),
        caplog.text,
        *NotificationDelivery.objects.values_list("body", flat=True),
        *(received.body.decode() for received in receiver.received),
    ]

    assert len(receiver.received) == 2
    for text in seen:
        assert SECRET not in text
        assert SECRET.removeprefix("whsec_") not in text
        assert endpoint.encrypted_secret not in text


def test_the_log_lists_the_latest_deliveries_newest_first(admin_client, team):
    endpoint = endpoint_for(team, "https://hooks.example.com/x")
    older = outbox.new_delivery(endpoint, "member_sync.completed", {})
    NotificationDelivery.objects.filter(pk=older.pk).update(
        status="failed", attempts=8, last_status_code=503, answer="Service Unavailable"
    )
    outbox.new_delivery(endpoint, "member_sync.held", {})

    page = admin_client.get(PAGE).content.decode()

    rows = re.findall(r'<tr data-type="([\w.]+)" data-status="(\w+)" data-attempts="(\d+)"', page)
    assert rows == [("member_sync.held", "pending", "0"), ("member_sync.completed", "failed", "8")]
    assert "Service Unavailable" in page
    assert page.count(">Redeliver</button>") == 2


def test_the_page_says_how_many_admins_mail_cannot_reach(admin_client, team, alice):
    page = admin_client.get(PAGE).content.decode()
    assert "1 admin of this team has no email address" in page

    alice.email = "alice@example.com"
    alice.save()
    assert 'id="admins-without-email"' not in admin_client.get(PAGE).content.decode()
