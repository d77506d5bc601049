"""The operator's endpoints, answered before any other middleware.

A load balancer probes each instance by its address over plain HTTP, and Prometheus scrapes it the
same way: ALLOWED_HOSTS would refuse that Host (400) and the HTTPS redirect would answer 301, which
most probes count as down. Sessions, CSRF and the login have no business there either.
"""

from django.http import HttpResponseNotAllowed

from ops.healthz import healthz
from ops.metrics import metrics

ENDPOINTS = {"/healthz": healthz, "/metrics": metrics}


class OpsEndpoints:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        endpoint = ENDPOINTS.get(request.path_info)
        if endpoint is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return endpoint(request)
