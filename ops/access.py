"""Who may read the operator's detail (/metrics, /healthz's readiness): the holder of METRICS_TOKEN,
or a client whose REMOTE_ADDR (the proxy's, behind one) is in METRICS_ALLOWED_IPS; nobody else."""

import hmac
import ipaddress

from django.conf import settings


def operator(request) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    # Each entry was checked to be an address or network when the settings were read.
    return any(address in ipaddress.ip_network(allowed, strict=False) for allowed in settings.METRICS_ALLOWED_IPS)
