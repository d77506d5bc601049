"""View decorators that turn the URL's `team_slug` into `request.team`. A user who is not a member
gets 404, so a team's existence does not leak; a member who is not an admin gets 403 on admin actions.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from teams.services import membership_of


def login_and_team_required(view):
    @login_required
    @wraps(view)
    def wrapper(request, team_slug, *args, **kwargs):
        membership = membership_of(request.user, team_slug)
        if membership is None:
            raise Http404("No such team.")
        request.team = membership.team
        request.team_membership = membership
        return view(request, team_slug, *args, **kwargs)

    return wrapper


def team_admin_required(view):
    @login_and_team_required
    @wraps(view)
    def wrapper(request, team_slug, *args, **kwargs):
        if not request.team_membership.is_admin:
            raise PermissionDenied("Only team admins may do this.")
        return view(request, team_slug, *args, **kwargs)

    return wrapper
