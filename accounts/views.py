from django.contrib.auth import login
from django.shortcuts import redirect, render

from accounts.forms import SignupForm
from accounts.signup_limit import allow_signup_attempt


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    if request.method == "POST" and not allow_signup_attempt(request):
        return render(request, "registration/too_many_attempts.html", status=429)
    form = SignupForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("onboarding")
    return render(request, "registration/signup.html", {"form": form})
