"""Several Pushpins in front of the same web processes (docs/deploy.md#past-one-machine): each holds
some of the streams, and every event is published to each Pushpin GRIP_URL names, so that it reaches
the streams of all."""

import django_grip
import pytest
from django.core.exceptions import ImproperlyConfigured
from django_eventstream import eventstream

from bench.stream_clients import EventStream
from config.settings import grip_proxies
from tests.helpers import free_port
from tests.stack import own_pushpin, session_cookies, stack_environment, web_server
from tests.test_event_streams import no_open_streams, run_event  # noqa: F401 (an autouse fixture)


@pytest.mark.django_db(transaction=True)
def test_both_pushpins_deliver_every_event(alice, bob, team, integration, settings, monkeypatch):
    """Two real Pushpins, each with a sig_key of its own, in front of one web process. This process
    publishes the events, to both Pushpins and not on the events Redis's pub/sub: only a stream a
    Pushpin holds carries them, so a stream the web process served itself (a Pushpin's signature it
    did not know) would fail the test. About 4 s, most of it starting the three processes."""
    web_port = free_port()
    with own_pushpin(web_port) as (first, first_grip_url), own_pushpin(web_port) as (second, second_grip_url):
        grip_url = f"{first_grip_url},{second_grip_url}"
        with web_server(stack_environment(GRIP_URL=grip_url), port=web_port):
            settings.GRIP_PROXIES, django_grip._pubcontrol = grip_proxies(grip_url), None
            monkeypatch.setattr(eventstream, "redis_client", None)
            try:
                pages = [
                    EventStream(f"{pushpin}/t/acme/events/", cookies=session_cookies(user))
                    for pushpin in (first, second)
                    for user in (alice, bob)
                ]
                # Each event once every page has the one before: a Pushpin catches up on what was
                # published before it subscribed (its recovery request, about a second after), but
                # only a Pushpin published to has the events after that.
                for _ in range(3):
                    run = run_event(integration, team)
                    assert [page.next()["run"] for page in pages] == [run.pk] * len(pages)
            finally:
                django_grip._pubcontrol = None


def test_grip_url_names_several_pushpins_comma_separated():
    proxies = grip_proxies("http://10.0.0.5:5561/?key=first, https://pushpin-2.internal/?iss=ms&key=base64:c2VjcmV0")

    assert proxies == [
        {"control_uri": "http://10.0.0.5:5561", "key": "first"},
        {"control_uri": "https://pushpin-2.internal", "control_iss": "ms", "key": b"secret"},
    ]


def test_one_grip_url_is_one_pushpin_and_none_is_no_pushpin():
    one = grip_proxies("http://127.0.0.1:5561/?key=secret")

    assert one == [{"control_uri": "http://127.0.0.1:5561", "key": "secret"}]
    assert grip_proxies("") == []


@pytest.mark.parametrize(
    ("grip_url", "message"),
    [
        ("http://10.0.0.5:5561/?key=first,http://10.0.0.6:5561/", "URL 2 of GRIP_URL needs key="),
        ("http://10.0.0.5:5561/?key=first,10.0.0.6:5561/?key=second", "URL 2 of GRIP_URL must be"),
        # A comma inside a key splits it: the rest is no URL (a key's comma is written %2C).
        ("http://10.0.0.5:5561/?key=fir,st", "URL 2 of GRIP_URL must be"),
        ("http://10.0.0.5:5561/?key=first,http://10.0.0.5:5561?key=first", "GRIP_URL names one Pushpin twice"),
    ],
)
def test_a_bad_pushpin_among_several_is_refused_by_its_place_not_its_key(grip_url, message):
    with pytest.raises(ImproperlyConfigured, match=message) as refused:
        grip_proxies(grip_url)

    assert "first" not in str(refused.value)
    assert "second" not in str(refused.value)
