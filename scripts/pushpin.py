"""Pushpin's configuration for `make cluster` and the tests: a folder of its own with every port
chosen free, so that several can run on one machine."""

import os
import re
import secrets
import socket
import tempfile
import time
from pathlib import Path

# Pushpin's own defaults deliver at most 2,500 messages a second: an event to 5,000 open pages would
# take two seconds to reach the last one. The limits in [handler] are sized below by what Pushpin's
# handler was measured to do (bench/cluster_streams.py; Pushpin 1.36, 2 cores).
PUSHPIN_CONF = """\
[global]
include={{libdir}}/internal.conf
rundir={rundir}
ipc_prefix=member-sync-
stats_connection_ttl=120

[runner]
# zurl makes Pushpin's requests to the web processes; Debian runs none of its own for us.
services=condure,zurl,pushpin-proxy,pushpin-handler
http_port={port}
logdir={rundir}
log_level={log_level}
client_buffer_size=8192
client_maxconn=50000

[proxy]
routesfile=routes
# Pushpin's http_port is the public one, and the web processes trust X-Forwarded-* from it (they see
# it at 127.0.0.1): what a client sends is dropped and replaced by what Pushpin saw. Otherwise a
# client picks the address Django sees (login lockout, /metrics) by sending X-Forwarded-For.
x_forwarded_for=truncate:0,append
x_forwarded_for_trusted=truncate:0,append
accept_x_forwarded_protocol=false
set_x_forwarded_protocol=proto-only
sig_iss=pushpin
sig_key={sig_key}
updates_check=off
zurl_out_specs=ipc://{{rundir}}/{{ipc_prefix}}zurl-in
zurl_out_stream_specs=ipc://{{rundir}}/{{ipc_prefix}}zurl-in-stream
zurl_in_specs=ipc://{{rundir}}/{{ipc_prefix}}zurl-out

[handler]
push_in_spec=tcp://127.0.0.1:{push_port}
push_in_sub_specs=tcp://127.0.0.1:{push_sub_port}
push_in_http_addr=127.0.0.1
push_in_http_port={publish_port}
stats_spec=ipc://{{rundir}}/{{ipc_prefix}}stats
command_spec=tcp://127.0.0.1:{command_port}
# One message to one stream costs the handler 30-38 us of its one thread (10,000 streams, with
# django-eventstream's filters; 24 us without them), condure as much on the other core: about 30,000
# deliveries a second, an event to 10,000 pages in a third of a second. At 100,000 a second the rate
# never holds a delivery back.
message_rate=100000
# Deliveries queued past this are dropped, logged only from level 2 ("exceeded publish hwm"); a page
# that missed one has it only once Pushpin follows its next link to Django. A large sync's progress
# (4 events a second) to 10,000 pages outruns the handler: in 15 s of it 100,000 dropped 184,115
# deliveries, 1,000,000 none, the last event 5.8 s late and the handler at 253 MB (191 MB idle with
# 10,000 streams).
message_hwm=1000000
"""


def pushpin_ports(conf: Path) -> list[int]:
    """The ports a Pushpin started with this configuration binds."""
    text = conf.read_text()
    return sorted({int(port) for port in re.findall(r"(?:_port=|tcp://127\.0\.0\.1:)(\d+)", text)})


def wait_until_free(ports, timeout=10.0) -> bool:
    """Whether every port could be bound within `timeout`. A Pushpin killed by a signal leaves its
    services to exit after it, and a new one started before they have let go of its ports failed to
    bind them ("Address already in use") and died."""
    deadline = time.monotonic() + timeout
    while True:
        busy = [port for port in ports if not _bindable(port)]
        if not busy:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _bindable(port) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return False
        return True


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def configure_pushpin(port, web_port):
    """Pushpin's configuration in a folder of its own, and the GRIP_URL the app publishes to it with."""
    rundir = Path(tempfile.mkdtemp(prefix="member-sync-pushpin-"))
    sig_key = secrets.token_urlsafe(32)
    publish_port = free_port()
    (rundir / "pushpin.conf").write_text(
        PUSHPIN_CONF.format(
            rundir=rundir,
            port=port,
            sig_key=sig_key,
            publish_port=publish_port,
            push_port=free_port(),
            push_sub_port=free_port(),
            command_port=free_port(),
            # Level 1 shows errors alone: a stream Pushpin answered with a 502, or a next link it failed
            # to fetch, shows only at 2 (3 logs every message between its services).
            log_level=int(os.environ.get("PUSHPIN_LOG_LEVEL", 1)),
        )
    )
    # One target: the socket every web process accepts on, so the kernel spreads the requests and a
    # dead process's share goes to the others until it is back.
    (rundir / "routes").write_text(f"* 127.0.0.1:{web_port}\n")
    return rundir / "pushpin.conf", f"http://127.0.0.1:{publish_port}/?key={sig_key}"
