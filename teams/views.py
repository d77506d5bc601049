from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

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
    context = {"team": request.team, "is_admin": request.team_membership.is_admin}
    return render(request, "teams/team_home.html", context)
