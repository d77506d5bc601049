"""The receiving end of notifications in tests: the secret they are signed with, names resolved as
a test says, an endpoint saved."""

import socket

from integrations.models import NotificationEndpoint

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, as the specification's example


def resolve_as(monkeypatch, names: dict[str, list[str]]) -> dict[str, list[str]]:
    """Host names resolve as `names` says ({name: [addresses]}, which the test may change later); an
    address is looked up as itself; any other name is unknown. No DNS server is asked."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            family = {True: socket.AF_INET6, False: socket.AF_INET}
            return [(family[":" in address], socket.SOCK_STREAM, 6, "", (address, port)) for address in names[host]]
        return real(host, port, *args, flags=socket.AI_NUMERICHOST, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def endpoint_for(team, url, secret=SECRET) -> NotificationEndpoint:
    endpoint = NotificationEndpoint(team=team, url=url)
    endpoint.secret = secret
    endpoint.save()
    return endpoint
