from django.contrib.auth import get_user_model

from tests.base import PASSWORD, BaseTestCase

User = get_user_model()


class SignupTestCase(BaseTestCase):
    def test_it_signs_up_logs_in_and_lands_on_onboarding(self):
        response = self.client.post(
            "/accounts/signup/",
            {"username": "dana", "password1": "a-long-unusual-pass-41", "password2": "a-long-unusual-pass-41"},
        )
        self.assertRedirects(response, "/onboarding/")
        self.assertTrue(User.objects.filter(username="dana").exists())
        self.assertContains(self.client.get("/onboarding/"), "Welcome, dana")

    def test_it_refuses_a_duplicate_username_with_the_form_error(self):
        response = self.client.post(
            "/accounts/signup/",
            {"username": "alice", "password1": "a-long-unusual-pass-41", "password2": "a-long-unusual-pass-41"},
        )
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "A user with that username already exists.")
        self.assertEqual(User.objects.filter(username="alice").count(), 1)

    def test_it_refuses_mismatched_passwords(self):
        response = self.client.post(
            "/accounts/signup/", {"username": "dana", "password1": "a-long-unusual-pass-41", "password2": "other"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertFalse(User.objects.filter(username="dana").exists())

    def test_it_refuses_an_empty_form(self):
        response = self.client.post("/accounts/signup/", {})
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "This field is required.")


class LoginTestCase(BaseTestCase):
    def test_it_refuses_a_wrong_password(self):
        response = self.client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Please enter a correct username and password.")
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_it_sends_a_user_with_a_team_to_the_team_page(self):
        response = self.client.post("/accounts/login/", {"username": "bob", "password": PASSWORD}, follow=True)
        self.assertRedirects(response, "/t/acme/")

    def test_it_sends_a_user_without_a_team_to_onboarding(self):
        User.objects.create_user("erin", password=PASSWORD)
        response = self.client.post("/accounts/login/", {"username": "erin", "password": PASSWORD}, follow=True)
        self.assertRedirects(response, "/onboarding/")

    def test_onboarding_requires_login(self):
        self.assertRedirects(self.client.get("/onboarding/"), "/accounts/login/?next=/onboarding/")

    def test_it_logs_out_with_a_post(self):
        self.client.force_login(self.alice)
        response = self.client.post("/accounts/logout/")
        self.assertEqual(response.status_code, 302)
        self.assertNotIn("_auth_user_id", self.client.session)
