from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import include, path

from integrations.views.onboarding import onboarding
from teams.views import home

# Django's login, logout and password pages; the password-reset ones mail a link, so they exist only
# with a mail server to send it.
auth_urlpatterns = [
    pattern for pattern in auth_urls.urlpatterns if settings.EMAIL_HOST or not pattern.name.startswith("password_reset")
]

urlpatterns = [
    path("", home, name="home"),
    path("onboarding/", onboarding, name="onboarding"),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include(auth_urlpatterns)),
    path("t/", include("teams.urls")),
    path("", include("integrations.urls")),
    path("admin/", admin.site.urls),
]
