"""The operator's endpoints, answered before any other middleware.

A load balancer probes each instance by its address over plain HTTP, and Prometheus scrapes it the
same way: ALLOWED_HOSTS would refuse that Host (400) and the HTTPS redirect would answer 301, which
most probes count as down. Sessions, CSRF and the login have no business there either.
"""

from django.http import HttpResponseNotAllowed
from django.utils.deprecation import MiddlewareMixin

from ops.healthz import healthz
from ops.metrics import metrics

ENDPOINTS = {"/healthz": healthz, "/metrics": metrics}


class OpsEndpoints(MiddlewareMixin):
    # MiddlewareMixin serves sync and async alike: a sync-only middleware first in the chain would
    # cost every ASGI request two thread hops.
    def process_request(self, request):
        endpoint = ENDPOINTS.get(request.path_info)
        if endpoint is None:
            return None
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return endpoint(request)
