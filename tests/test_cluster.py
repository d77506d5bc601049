"""`make cluster` driven by a browser: Pushpin on PORT in front of two web processes and two workers,
on PostgreSQL. Streams are held by Pushpin, so a web process can die under an open page."""

import os
import signal

import pytest
from playwright.sync_api import expect

from tests.banners import create_admin_as_printed
from tests.helpers import LIVE, wait_for
from tests.oauth_flow import onboard_in_browser
from tests.stack import Cluster, github_environment

# One xdist worker runs the whole module: its tests share one cluster, started once.
pytestmark = pytest.mark.xdist_group("test_cluster")


@pytest.fixture(scope="module")
def cluster(github_simulator):
    """Costs 5-10 s once for the module: make cluster's PostgreSQL database, Pushpin, two web processes
    and two workers."""
    cluster = Cluster(**github_environment(github_simulator))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        print("".join(cluster.output))


def onboard(browser, cluster, username):
    """A new user's page, onboarded through Pushpin: the team page with the live banner."""
    return onboard_in_browser(browser.new_context().new_page(), cluster.url, username)


def test_a_browser_onboards_through_pushpin_and_sees_the_banner_complete(browser, cluster, github):
    # Under way, its total known, until the test has seen it so: the first page takes longer than
    # the interval between progress events, so its progress is published; the next waits.
    github.add_org("acme", size=2000)
    github.set_latency(300)
    github.org("acme").hold(after=100)
    page = onboard(browser, cluster, "erin")

    banner = page.locator("#member-sync-banner")
    expect(banner.locator("progress")).to_be_visible(timeout=LIVE)
    expect(banner).to_contain_text(" of 2000", timeout=LIVE)
    github.set_latency(0)
    github.org("acme").release()
    expect(banner).to_have_attribute("data-status", "complete", timeout=LIVE)
    expect(banner).to_contain_text("Imported 2000 members from acme.")
    expect(banner.locator("progress")).to_be_hidden()


def test_the_banner_completes_when_a_web_process_dies_under_it(browser, cluster, github):
    github.add_org("acme", size=2000)
    github.org("acme").hold(after=100)
    page = onboard(browser, cluster, "frank")
    banner = page.locator("#member-sync-banner")
    expect(banner.locator("progress")).to_be_visible(timeout=LIVE)

    webs = cluster.web_pids()
    assert len(webs) == 2
    os.kill(webs[0], signal.SIGKILL)
    github.org("acme").release()

    expect(banner).to_have_attribute("data-status", "complete", timeout=LIVE)
    expect(banner).to_contain_text("Imported 2000 members from acme.")
    # The dead process is replaced, and the page still loads through the one that lived.
    wait_for(lambda: len(cluster.web_pids()) == 2 and webs[0] not in cluster.web_pids(), message="a new web process")
    page.reload()
    expect(page.locator("#member-sync-banner")).to_have_attribute("data-status", "complete")


def test_the_admin_account_is_created_as_the_banner_says(cluster):
    admin_page, status = create_admin_as_printed(cluster.output, cluster.url)
    assert (admin_page, status) == (f"{cluster.url}/admin/", 200)
