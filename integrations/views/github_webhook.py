"""GitHub's webhook deliveries (docs/architecture.md#webhooks). No session, login or CSRF token: the
signature is the authentication, checked by integrations.member_sync.webhook_inbox.receive."""

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.member_sync import webhook_inbox


@csrf_exempt
@require_POST
def github_webhook(request):
    answer = webhook_inbox.receive(
        body=request.body,
        signature=request.headers.get("X-Hub-Signature-256"),
        event=request.headers.get("X-GitHub-Event", ""),
        delivery_id=request.headers.get("X-GitHub-Delivery", ""),
    )
    return HttpResponse(answer.text, status=answer.status, content_type="text/plain; charset=utf-8")
