"""Where notifications may go. A server that posts to URLs people type can be made to reach what
only it can reach (SSRF): its own host, the cloud's metadata address, services on a private network.
So, unless NOTIFICATIONS_ALLOW_PRIVATE_URLS is on, a URL must be https, name no user or password,
not be this site, and every address its host resolves to must be a public one. The form checks it
when the URL is saved, and the sending connection again when it connects: it connects only to an
address it checked itself, so that a name that resolves elsewhere by then (DNS rebinding) gains nothing.
"""

import ipaddress
import socket
from typing import Any
from urllib.parse import SplitResult, urlsplit

import requests
from django.conf import settings
from django.http.request import validate_host
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from integrations import words

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedDestination(Exception):
    """The URL may not be posted to; str() says why, in words for the admin."""


def destination_problem(url: str, *, resolve: bool = True) -> str:
    """Why the URL may not receive notifications, or "" when it may. With `resolve`, its host's
    addresses are looked up and checked too (the sending connection checks them itself)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return words.URL_NOT_VALID
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return words.URL_NOT_VALID
    if "@" in parts.netloc:
        return words.URL_WITH_USERINFO
    allow_private = settings.NOTIFICATIONS_ALLOW_PRIVATE_URLS
    if parts.scheme != "https" and not allow_private:
        return words.URL_NOT_HTTPS
    if _is_own_site(parts, allow_private=allow_private):
        return words.URL_OWN_SITE
    if resolve and not allow_private:
        try:
            public_addresses(parts.hostname, port or _default_port(parts.scheme))
        except RefusedDestination as refusal:
            return str(refusal)
    return ""


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _is_own_site(parts: SplitResult, *, allow_private: bool) -> bool:
    """This site: SITE_URL's host and, unless private addresses are allowed (where other servers
    often share this machine's name), any name of ALLOWED_HOSTS, on any port."""
    host = (parts.hostname or "").rstrip(".").lower()
    site = urlsplit(settings.SITE_URL)
    if allow_private:
        own = (site.hostname, site.port or _default_port(site.scheme))
        return (host, parts.port or _default_port(parts.scheme)) == own
    names = [name for name in settings.ALLOWED_HOSTS if name != "*"]
    return host == site.hostname or validate_host(host, names) or validate_host(f"[{host}]", names)


def is_public(address: Address) -> bool:
    """An address on the public internet: not loopback, private, link-local, multicast, reserved,
    unspecified or shared (carrier-grade NAT). An IPv4 address inside IPv6 is judged as itself."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


def public_addresses(host: str, port: int) -> list[Address]:
    """Every address the host resolves to, if all of them are public; else RefusedDestination."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise RefusedDestination(words.URL_HOST_UNKNOWN.format(host=host)) from None
    addresses: list[Address] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])  # an IPv6 zone is no part of it
        if not is_public(address):
            raise RefusedDestination(words.URL_PRIVATE_ADDRESS.format(host=host, address=address))
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise RefusedDestination(words.URL_HOST_UNKNOWN.format(host=host))
    return addresses


class _CheckedConnection(HTTPConnection):
    """Connects only to an address it has just checked to be public (unless private ones are
    allowed), while TLS still checks the certificate against the host's name."""

    def _new_conn(self) -> socket.socket:
        if settings.NOTIFICATIONS_ALLOW_PRIVATE_URLS:
            return super()._new_conn()
        error: Exception | None = None
        for address in public_addresses(self._dns_host, self.port):
            try:
                return urllib3_connection.create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as timeout:
                error = ConnectTimeoutError(self, f"Connection to {self.host} timed out.")
                error.__cause__ = timeout
            except OSError as failure:
                error = NewConnectionError(self, f"Failed to establish a new connection: {failure}")
                error.__cause__ = failure
        assert error is not None  # public_addresses returns at least one address
        raise error


class _CheckedHTTPSConnection(_CheckedConnection, HTTPSConnection):
    pass


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}


def checked_session() -> requests.Session:
    """A session whose connections go only where this module allows: no proxy from the environment
    (it would be the address checked), no retry of its own (the delivery schedule retries)."""
    session = requests.Session()
    session.trust_env = False
    adapter = _CheckedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
