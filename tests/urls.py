"""The project's URLs plus probe views: two to test the team decorators through real requests, one
that fails, to test error reporting."""

from django.http import HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns
from teams.decorators import login_and_team_required, team_admin_required


@login_and_team_required
def member_probe(request, team_slug):
    return HttpResponse(f"member of {request.team.slug}")


@team_admin_required
def admin_probe(request, team_slug):
    return HttpResponse(f"admin of {request.team.slug}")


def failing_probe(request):
    raise RuntimeError("the view failed for carol@example.com")


urlpatterns = [
    path("probe/failing/", failing_probe),
    path("probe/<slug:team_slug>/member/", member_probe, name="member_probe"),
    path("probe/<slug:team_slug>/admin/", admin_probe, name="admin_probe"),
    *project_urlpatterns,
]
