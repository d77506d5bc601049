from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import URLPattern, URLResolver, include, path

from integrations.views.onboarding import onboarding
from teams.views import home


def _mails_a_link(pattern: URLPattern | URLResolver) -> bool:
    return isinstance(pattern, URLPattern) and (pattern.name or "").startswith("password_reset")


# Django's login, logout and password pages; the password-reset ones mail a link, so they exist only
# with a mail server to send it.
auth_urlpatterns = [pattern for pattern in auth_urls.urlpatterns if settings.EMAIL_HOST or not _mails_a_link(pattern)]

urlpatterns = [
    path("", home, name="home"),
    path("onboarding/", onboarding, name="onboarding"),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include(auth_urlpatterns)),
    path("t/", include("teams.urls")),
    path("", include("integrations.urls")),
    path("admin/", admin.site.urls),
]
