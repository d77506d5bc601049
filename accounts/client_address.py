"""The client a request comes from, as failed logins and sign-ups are counted (django-axes'
AXES_CLIENT_IP_CALLABLE): REMOTE_ADDR, with an IPv6 address taken as its /64.

A single host or home network is given a /64 and may use any of its 2**64 addresses; counted one by
one, each failure could come from a fresh address and no limit would ever be reached."""

import ipaddress


def client_address(request) -> str | None:
    address = request.META.get("REMOTE_ADDR") or None
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped:  # ::ffff:a.b.c.d, an IPv4 client on a dual-stack socket
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False).network_address)
    return str(ip)
