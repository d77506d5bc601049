from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from teams.decorators import login_and_team_required
from teams.services import first_team_of


@login_required
def home(request):
    team = first_team_of(request.user)
    if team is None:
        return redirect("onboarding")
    return redirect("teams:team_home", team_slug=team.slug)


@login_and_team_required
def team_home(request, team_slug):
    context = {"team": request.team, "is_admin": request.team_membership.is_admin}
    return render(request, "teams/team_home.html", context)
