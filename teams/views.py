from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from integrations.sync_status import status_context
from teams.decorators import login_and_team_required
from teams.models import Team


@login_required
def home(request):
    team = Team.objects.filter(memberships__user=request.user).order_by("memberships__created_at").first()
    if team is None:
        return redirect("onboarding")
    return redirect("teams:team_home", team_slug=team.slug)


@login_and_team_required
def team_home(request, team_slug):
    return render(request, "teams/team_home.html", status_context(request))
