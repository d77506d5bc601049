"""A team's event stream when Pushpin holds it (GRIP): Django still decides who reads what, for the
first request and for every next link Pushpin follows; only a request Pushpin signed is treated as
Pushpin's. The whole path through a real Pushpin is in tests/test_cluster.py."""

import threading
import time
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import django_grip
import jwt
import pytest

from bench.stream_clients import EventStream
from config.settings import grip_proxies
from integrations.live import eventstream, streams
from integrations.live.channels import team_channel
from teams.models import Membership
from tests.helpers import free_port, wait_for
from tests.stack import (
    HeldAnswers,
    own_pushpin,
    session_cookies,
    stack_environment,
    web_server,
)
from tests.test_event_streams import no_open_streams, run_event, stream_error  # noqa: F401 (an autouse fixture)

PUSHPIN_KEY = "pushpin-signing-key-for-these-tests-only"


@pytest.fixture(autouse=True)
def behind_pushpin(settings):
    settings.GRIP_PROXIES = grip_proxies(f"http://127.0.0.1:9/?key={PUSHPIN_KEY}")


def signed_by_pushpin(key=PUSHPIN_KEY):
    return {"HTTP_GRIP_SIG": jwt.encode({"iss": "pushpin", "exp": int(time.time()) + 3600}, key)}


def next_link_meta(user_id, channel, settings):
    claims = {"iss": "es", "exp": int(time.time()) + 3600, "channels": [channel], "user": str(user_id)}
    return jwt.encode(claims, settings.SECRET_KEY)


def next_link_parameters(user_id, channel, settings, *, ends=None):
    ends = streams.proxied_stream_end(time.time()) if ends is None else ends
    meta = next_link_meta(user_id, channel, settings)
    return {"link": "next", "recover": "true", "es-meta": meta, streams.END_PARAMETER: streams.signed_end(ends)}


def grip_links(response) -> dict[str, str]:
    """The next link (under "next") and its timeout, from `<url>; rel=next; timeout=N`."""
    url, *parameters = response["Grip-Link"].split("; ")
    return {"next": url.strip("<>"), **dict(parameter.split("=", 1) for parameter in parameters)}


def test_a_member_gets_the_stream_start_and_pushpin_holds_it(client, alice, team):
    client.force_login(alice)

    response = client.get("/t/acme/events/", **signed_by_pushpin())

    assert response.status_code == 200
    assert response["Grip-Hold"] == "stream"
    assert f"events-{team_channel(team.pk)}" in response["Grip-Channel"]
    assert response.content.decode().startswith(streams.RECONNECT_SOON)
    assert "event: stream-open" in response.content.decode()


def test_a_stream_says_to_spread_its_reconnection_over_the_time_the_site_needs_to_open_every_stream(
    client, alice, bob, team, settings
):
    settings.EVENTS_REOPENINGS_PER_SECOND = 20
    client.force_login(alice)
    first = client.get("/t/acme/events/", **signed_by_pushpin()).content.decode()
    settings.EVENTS_MAX_STREAMS_PER_USER = 200
    for _ in range(99):
        streams.claim_stream(bob.pk)

    later = client.get("/t/acme/events/", **signed_by_pushpin()).content.decode()

    assert 'event: stream-reopen\ndata: {"spread": 1000}' in first  # at least the page's own window
    assert 'event: stream-reopen\ndata: {"spread": 5050}' in later  # 101 streams open, 20 a second


def test_a_request_pushpin_did_not_sign_is_served_as_a_plain_stream(client, alice, team):
    client.force_login(alice)

    response = client.get("/t/acme/events/", **signed_by_pushpin(key="not-pushpins-key-but-just-as-long"))

    assert "Grip-Hold" not in response
    assert response.streaming
    response.close()


def test_a_non_member_gets_the_one_denial_and_no_hold(client, charlie, team):
    client.force_login(charlie)

    response = client.get("/t/acme/events/", **signed_by_pushpin())

    assert "Grip-Hold" not in response
    assert stream_error(response) == {"condition": "forbidden", "text": eventstream.STREAM_DENIED}


def test_a_next_link_is_checked_again_for_the_user_it_was_issued_to(client, alice, bob, team, settings):
    recover = next_link_parameters(bob.pk, team_channel(team.pk), settings)

    still_member = client.get("/t/acme/events/", recover, **signed_by_pushpin())
    Membership.objects.filter(user=bob).delete()
    removed = client.get("/t/acme/events/", recover, **signed_by_pushpin())

    assert still_member["Grip-Hold"] == "stream"
    assert "Grip-Hold" not in removed
    assert stream_error(removed)["text"] == eventstream.STREAM_DENIED


@pytest.mark.parametrize("meta", ["not-a-jwt", jwt.encode({"user": "1"}, "another-secret-key-that-is-long-enough")])
def test_a_next_link_with_bad_meta_is_a_bad_request(client, team, meta):
    response = client.get("/t/acme/events/", {"link": "next", "es-meta": meta}, **signed_by_pushpin())

    assert response.status_code == 400


def test_next_link_parameters_from_anyone_but_pushpin_are_a_bad_request(client, alice, team, settings):
    client.force_login(alice)
    meta = next_link_meta(alice.pk, team_channel(team.pk), settings)

    response = client.get("/t/acme/events/", {"link": "next", "es-meta": meta})

    assert response.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_removed_member_loses_the_streams_pushpin_holds(alice, bob, team, integration, settings, broker):
    port = free_port()
    with own_pushpin(port) as (pushpin, grip_url), web_server(stack_environment(GRIP_URL=grip_url), port=port):
        # This process removes the member, so it publishes the kick: to this Pushpin.
        settings.GRIP_PROXIES, django_grip._pubcontrol = grip_proxies(grip_url), None
        try:
            removed = EventStream(f"{pushpin}/t/acme/events/", cookies=session_cookies(bob))
            stays = EventStream(f"{pushpin}/t/acme/events/", cookies=session_cookies(alice))
            # Both held by Pushpin. It asks Django once more about each, about a second after it
            # subscribed (its recovery request): whichever comes first, that check or the kick this
            # process publishes, the removed member's stream must end.
            first = run_event(integration, team)
            for stream in (removed, stays):
                assert stream.next()["run"] == first.pk

            team.memberships.get(user=bob).delete()

            assert removed.next("stream-error") == {"condition": "forbidden", "text": eventstream.STREAM_DENIED}
            run = run_event(integration, team)
            assert stays.next()["run"] == run.pk
        finally:
            django_grip._pubcontrol = None


@pytest.mark.django_db(transaction=True)
def test_streams_pushpin_subscribed_after_an_event_django_read_them_without_still_get_it(
    alice, team, integration, settings, broker
):
    """The race of a restart storm, made a state: Django has answered five streams' starts (read
    from the store before the event) and Pushpin has not yet subscribed them when the event is
    published. Each must still get the event: Pushpin follows a new stream's next link (recover)
    about a second after it subscribed it, and Django answers with what the stream missed (1.1 s
    here). A change to the next link that broke that (or made it wait for its two-minute timeout)
    fails here. About 10 s: a web server and a Pushpin of its own."""
    web_port, link_port = free_port(), free_port()
    link = HeldAnswers(link_port, to=web_port)
    with own_pushpin(link_port) as (pushpin, grip_url), web_server(stack_environment(GRIP_URL=grip_url), port=web_port):
        settings.GRIP_PROXIES, django_grip._pubcontrol = grip_proxies(grip_url), None
        opened = []
        try:
            link.hold()
            openings = [
                threading.Thread(target=lambda: opened.append(EventStream(f"{pushpin}/t/acme/events/",
                                                                          cookies=session_cookies(alice))))
                for _ in range(5)
            ]  # fmt: skip
            for opening in openings:
                opening.start()
            wait_for(lambda: link.held == 5, message="Django's answers to the five starts")

            run = run_event(integration, team)
            link.release()
            for opening in openings:
                opening.join()

            late = [stream for stream in opened if not received(stream, run, timeout=10)]
            assert late == []
        finally:
            link.release()
            link.close()
            for stream in opened:
                stream.close()
            django_grip._pubcontrol = None


def received(stream, run, *, timeout):
    try:
        return stream.next(where=lambda data: data["run"] == run.pk, timeout=timeout)
    except AssertionError:
        return None


@pytest.mark.postgres  # teams.services.active_member_of is SQL written out
def test_a_session_from_before_a_password_change_opens_no_stream_through_pushpin(client, alice, team):
    client.force_login(alice)
    alice.set_password("a new password, set elsewhere")
    alice.save()

    response = client.get("/t/acme/events/", **signed_by_pushpin())

    assert "Grip-Hold" not in response
    assert stream_error(response)["text"] == eventstream.STREAM_DENIED


@pytest.mark.postgres  # teams.services.active_member_of is SQL written out
def test_a_session_signed_with_a_fallback_secret_key_still_opens_a_stream(client, alice, team, settings):
    client.force_login(alice)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a rotated secret key, long enough for its purpose here"

    response = client.get("/t/acme/events/", **signed_by_pushpin())

    assert response["Grip-Hold"] == "stream"


@pytest.mark.postgres  # teams.services.active_member_of is SQL written out
def test_a_deactivated_users_session_opens_no_stream_through_pushpin(client, alice, team):
    client.force_login(alice)
    type(alice).objects.filter(pk=alice.pk).update(is_active=False)

    response = client.get("/t/acme/events/", **signed_by_pushpin())

    assert "Grip-Hold" not in response


@pytest.mark.postgres  # teams.services.active_member_of is SQL written out
def test_a_streams_start_through_pushpin_reads_the_session_and_one_row(client, alice, team, django_assert_num_queries):
    """Who may read, from the session and one read of the membership with its user: a restart storm
    is thousands of these at once."""
    client.force_login(alice)

    with django_assert_num_queries(2):  # the session, the membership
        response = client.get("/t/acme/events/", **signed_by_pushpin())

    assert response["Grip-Hold"] == "stream"


@pytest.mark.postgres  # teams.services.active_member_of is SQL written out
def test_a_next_link_of_a_deactivated_user_is_refused(client, bob, team, settings):
    recover = next_link_parameters(bob.pk, team_channel(team.pk), settings)
    type(bob).objects.filter(pk=bob.pk).update(is_active=False)

    response = client.get("/t/acme/events/", recover, **signed_by_pushpin())

    assert "Grip-Hold" not in response
    assert stream_error(response)["text"] == eventstream.STREAM_DENIED


def test_the_next_link_carries_the_streams_end_and_pushpin_comes_back_by_then(client, alice, team, settings):
    settings.EVENTS_STREAM_MAX_SECONDS = 30
    client.force_login(alice)

    links = grip_links(client.get("/t/acme/events/", **signed_by_pushpin()))

    assert links["rel"] == "next"
    ends = streams.end_of(parse_qs(urlsplit(links["next"]).query)[streams.END_PARAMETER][0])
    assert 0 < ends - time.time() <= 30
    assert int(links["timeout"]) <= 30


def test_streams_opened_together_get_one_next_link_which_pushpin_follows_once_for_all(client, alice, team):
    """Pushpin shares a request to an identical next link, and its update limiter counts links, not
    streams: a link per stream made a run's events reach 300 pages half a minute late."""
    client.force_login(alice)

    # Within one second: the link carries its expiry in seconds (the library's es-meta), so two streams
    # opened across a second's turn get two links, which a busy machine made a flaky test of this.
    with mock.patch("time.time", return_value=time.time()):
        first, second = (grip_links(client.get("/t/acme/events/", **signed_by_pushpin())) for _ in range(2))

    assert first["next"] == second["next"]


def test_a_next_link_after_the_streams_end_ends_it(client, alice, team, settings):
    ended = next_link_parameters(alice.pk, team_channel(team.pk), settings, ends=int(time.time()) - 1)

    response = client.get("/t/acme/events/", ended, **signed_by_pushpin())

    assert response.status_code == 200
    assert "Grip-Hold" not in response
    assert "Grip-Link" not in response
    assert response.content == b""


def test_a_next_link_without_a_signed_end_is_a_bad_request(client, alice, team, settings):
    parameters = next_link_parameters(alice.pk, team_channel(team.pk), settings)
    parameters[streams.END_PARAMETER] = str(int(time.time()) + 10**6)

    response = client.get("/t/acme/events/", parameters, **signed_by_pushpin())

    assert response.status_code == 400


def test_behind_pushpin_a_user_holds_a_limited_number_of_streams(client, alice, team, settings):
    settings.EVENTS_MAX_STREAMS_PER_USER = 2
    client.force_login(alice)

    responses = [client.get("/t/acme/events/", **signed_by_pushpin()) for _ in range(3)]

    assert [response.get("Grip-Hold") for response in responses] == ["stream", "stream", None]
    assert stream_error(responses[2])["condition"] == "too-many-streams"


def test_behind_pushpin_a_claim_counts_until_the_streams_end(client, alice, team, settings):
    settings.EVENTS_STREAM_MAX_SECONDS = 30
    client.force_login(alice)

    client.get("/t/acme/events/", **signed_by_pushpin())

    [(_, expires)] = eventstream.EVENTS_REDIS.zrange(streams._user_streams_key(alice.pk), 0, -1, withscores=True)
    assert 0 < expires - time.time() <= 30


@pytest.mark.django_db(transaction=True)
def test_through_pushpin_the_cap_holds_and_a_stream_ends_at_its_lifetime(alice, team):
    """Costs about 6 s: a Pushpin and a web server of their own, and a stream waited out to the end
    of its (shortened) lifetime."""
    port = free_port()
    with own_pushpin(port) as (pushpin, grip_url):
        env = stack_environment(GRIP_URL=grip_url, EVENTS_MAX_STREAMS_PER_USER=1, EVENTS_STREAM_MAX_SECONDS=4)
        with web_server(env, port=port):
            url, cookies = f"{pushpin}/t/acme/events/", session_cookies(alice)
            first = EventStream(url, cookies=cookies)
            first.next("stream-open")
            assert EventStream(url, cookies=cookies).next("stream-error")["condition"] == "too-many-streams"

            with pytest.raises(AssertionError, match="closed"):
                first.next(timeout=20)
            # Its end released its claim: the browser's reconnection is let in.
            EventStream(url, cookies=cookies).next("stream-open")
