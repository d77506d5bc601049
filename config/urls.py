from django.contrib import admin
from django.urls import include, path

from integrations.views.onboarding import onboarding
from teams.views import home

urlpatterns = [
    path("", home, name="home"),
    path("onboarding/", onboarding, name="onboarding"),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("t/", include("teams.urls")),
    path("", include("integrations.urls")),
    path("admin/", admin.site.urls),
]
