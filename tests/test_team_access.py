from django.test import override_settings

from tests.base import BaseTestCase


@override_settings(ROOT_URLCONF="tests.urls")
class TeamAccessTestCase(BaseTestCase):
    def test_it_shows_the_team_page_to_a_member(self):
        self.client.force_login(self.bob)
        response = self.client.get("/t/acme/")
        self.assertContains(response, "Acme")

    def test_it_hides_a_team_from_a_non_member_with_404(self):
        self.client.force_login(self.charlie)
        self.assertEqual(self.client.get("/t/acme/").status_code, 404)
        self.assertEqual(self.client.get("/probe/acme/member/").status_code, 404)
        self.assertEqual(self.client.get("/probe/acme/admin/").status_code, 404)

    def test_it_answers_404_for_a_team_that_does_not_exist(self):
        self.client.force_login(self.alice)
        response = self.client.get("/t/no-such-team/")
        self.assertEqual(response.status_code, 404)
        self.assertContains(response, "Page not found", status_code=404)

    def test_it_answers_404_for_a_malformed_slug(self):
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/t/not a slug!/").status_code, 404)

    def test_it_sends_anonymous_users_to_login(self):
        response = self.client.get("/t/acme/")
        self.assertRedirects(response, "/accounts/login/?next=/t/acme/")

    def test_it_sets_request_team_for_members(self):
        self.client.force_login(self.bob)
        self.assertContains(self.client.get("/probe/acme/member/"), "member of acme")

    def test_it_requires_admin_for_admin_actions(self):
        self.client.force_login(self.bob)
        response = self.client.get("/probe/acme/admin/")
        self.assertEqual(response.status_code, 403)
        self.assertContains(response, "Only a team admin", status_code=403)

    def test_it_lets_admins_do_admin_actions(self):
        self.client.force_login(self.alice)
        self.assertContains(self.client.get("/probe/acme/admin/"), "admin of acme")

    def test_admin_rights_do_not_cross_teams(self):
        self.client.force_login(self.charlie)
        self.assertContains(self.client.get("/probe/globex/admin/"), "admin of globex")
        self.assertEqual(self.client.get("/probe/acme/admin/").status_code, 404)
