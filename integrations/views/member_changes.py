"""What changed, for a team's admins: one member's history, and the members or their changes
exported (CSV, or JSON pages for scripts). The run detail lists its own changes (views/members.py)."""

from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from integrations.exports import (
    MAX_PER_PAGE,
    PER_PAGE,
    BadExportRequest,
    change_lines,
    change_page,
    member_lines,
    member_page,
)
from integrations.models import GitHubIntegration, GitHubMember, MemberChange
from teams.decorators import team_admin_required

HISTORY_SHOWN = 500


@require_GET
@team_admin_required
def github_members_export(request, team_slug):
    """Every member of the team's integration, active or not, or with ?changes=1 every change its runs
    made, as CSV, streamed; with ?format=json as JSON pages (?after=, ?per_page=) that link the next
    (docs/interfaces.md#what-changed). Admins only: it holds the emails GitHub shows."""
    integration = get_object_or_404(GitHubIntegration, team=request.team)
    changes = request.GET.get("changes") == "1"
    try:
        export_format = request.GET.get("format", "csv")
        if export_format == "json":
            return _json_page(request, integration, changes=changes)
        if export_format != "csv":
            raise BadExportRequest("format is csv (the default) or json.")
        if "after" in request.GET or "per_page" in request.GET:
            raise BadExportRequest("after and per_page page the JSON export (format=json); the CSV holds every row.")
    except BadExportRequest as error:
        return JsonResponse({"error": str(error)}, status=400)
    lines = change_lines(integration) if changes else member_lines(integration)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    name = "github-member-changes" if changes else "github-members"
    response["Content-Disposition"] = f'attachment; filename="{request.team.slug}-{name}.csv"'
    return response


def _json_page(request, integration, *, changes):
    per_page = request.GET.get("per_page", str(PER_PAGE))
    # Its digits counted first: int() of thousands of them would take long, and then refuse.
    if not (per_page.isascii() and per_page.isdigit() and len(per_page) <= 6 and 1 <= int(per_page) <= MAX_PER_PAGE):
        raise BadExportRequest(f"per_page is a whole number from 1 to {MAX_PER_PAGE}.")
    read = change_page if changes else member_page
    page = read(integration, after=request.GET.get("after"), per_page=int(per_page))
    following = None
    if page.after is not None:
        query = request.GET.copy()
        query["after"] = page.after
        following = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    key = "changes" if changes else "members"
    return JsonResponse({key: page.rows, "next": following}, json_dumps_params={"ensure_ascii": False})


@require_GET
@team_admin_required
def github_member_history(request, team_slug, github_id):
    """One member's changes, newest first (admins only: a profile's change shows the email)."""
    integration = get_object_or_404(GitHubIntegration, team=request.team)
    member = get_object_or_404(GitHubMember, integration=integration, github_id=github_id)
    changes = MemberChange.objects.filter(integration=integration, github_id=github_id).select_related("by")
    changes = changes.order_by("-at", "-pk")
    context = {"team": request.team, "member": member, "changes": changes[:HISTORY_SHOWN]}
    return render(request, "integrations/member_history.html", context)
