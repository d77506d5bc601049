"""Every page, checked by axe-core in a real browser: no serious or critical violation (issue 12).
Pages are visited as people reach them, through the real stack."""

import pytest

from teams.models import Membership, Team
from tests.accessibility import serious_violations
from tests.stack import github_environment, sign_in, stack_environment, web_server, worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_axe_finds_what_a_screen_reader_user_would_miss(browser):
    page = browser.new_page()
    page.set_content('<html lang="en"><title>t</title><main><img src="x.png"></main></html>')
    assert [line.split(" ")[0] for line in serious_violations(page)] == ["image-alt"]


def test_every_page_has_no_serious_or_critical_violation(browser, github, broker, django_user_model):
    """Costs about 7 s: axe-core runs on eleven pages, each reached in a real browser as a person reaches
    it."""
    env = stack_environment(DEBUG=1, **github_environment(github))
    found = {}
    with web_server(env) as web, worker(env):
        page = browser.new_context().new_page()

        def check(name):
            found[name] = serious_violations(page)

        page.goto(f"{web.url}/accounts/login/")
        check("login")
        page.goto(f"{web.url}/accounts/signup/")
        check("signup")
        page.get_by_label("Username:").fill("dana")
        page.get_by_label("Password:", exact=True).fill("a-long-unusual-pass-41")
        page.get_by_label("Password confirmation:").fill("a-long-unusual-pass-41")
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(f"{web.url}/onboarding/")
        check("onboarding")
        page.get_by_role("link", name="Connect GitHub").or_(page.get_by_role("button", name="Connect GitHub")).click()
        page.get_by_role("button", name="Authorize").click()
        page.get_by_role("button", name="acme").wait_for()
        check("organization choice")
        page.get_by_role("button", name="acme").click()
        page.locator("#member-sync-banner[data-status=complete]").wait_for()
        check("team page with its banner")
        page.get_by_role("link", name="See the members").click()
        page.locator("#github-members img").first.wait_for()
        check("members page")
        page.locator("#member-sync-runs").get_by_role("link").first.click()
        page.locator("#member-sync-run").wait_for()
        check("run detail")
        run_detail = page.url
        page.goto(f"{web.url}/t/acme/github/members/")
        page.get_by_role("link", name="Notifications").click()
        page.locator("#notification-settings").wait_for()
        check("notification settings")
        page.goto(f"{web.url}/github/callback/?code=x&state=forged")
        check("GitHub connection problem")
        page.goto(f"{web.url}/t/no-such-team/")
        check("not found")
        member = django_user_model.objects.create(username="erin")
        Membership.objects.create(team=Team.objects.get(), user=member, role=Membership.Role.MEMBER)
        sign_in(page.context, web.url, member)
        assert page.goto(run_detail).status == 403
        check("refused (a member, not an admin)")
    assert len(found) == 11
    assert found == {name: [] for name in found}
