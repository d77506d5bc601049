"""The sign-up form: Django's, with an optional email address."""

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User


class SignupForm(UserCreationForm):
    """Django's UserCreationForm (username, password1, password2), and an email address, optional:
    without one the account works, but nothing can be mailed to it (a team admin's notices, a
    password reset)."""

    email = forms.EmailField(
        required=False,
        help_text="Optional. Where we mail you when a sync needs a team admin, and a password reset link.",
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")
