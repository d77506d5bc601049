"""`make cluster`: the scaled-out topology on one machine (SPEC §5). Pushpin on PORT holds the open
event streams in front of WEB_PROCESSES uvicorn processes, WORKER_PROCESSES Dramatiq workers share the
Redis broker, PostgreSQL (DATABASE_URL) holds the data, and the GitHub simulator stands in for GitHub
unless GITHUB_API_URL is set. A web process or worker that dies is started again; Pushpin, the other
processes and the open streams stay. Ctrl-C or SIGTERM stops everything."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import (
    ROOT,
    print_how_to_log_in,
    start,
    start_github_simulator,
    stop,
    stop_on_sigterm,
    wait_until_serving,
    web_command,
    worker_command,
)
from services import ensure_redis

# Pushpin's own defaults deliver at most 2,500 messages a second: an event to 5,000 open pages would
# take two seconds to reach the last one.
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
log_level=1
client_buffer_size=8192
client_maxconn=50000

[proxy]
routesfile=routes
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
message_rate=100000
message_hwm=100000
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pushpin_binary():
    found = shutil.which("pushpin")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing Pushpin from Debian's packages…", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "pushpin"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        return shutil.which("pushpin")
    sys.exit("make cluster needs Pushpin: install Debian's package (sudo apt-get install pushpin) or see pushpin.org.")


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
        )
    )
    # One target: the socket every web process accepts on, so the kernel spreads the requests and a
    # dead process's share goes to the others until it is back.
    (rundir / "routes").write_text(f"* 127.0.0.1:{web_port}\n")
    return rundir / "pushpin.conf", f"http://127.0.0.1:{publish_port}/?key={sig_key}"


def web_socket():
    """The listening socket the web processes share (uvicorn --fd), bound before any of them starts."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def start_web(listener, processes):
    command = [arg for arg in web_command(0) if arg not in ("--host", "127.0.0.1", "--port", "0")]
    process = subprocess.Popen(
        [*command, "--fd", str(listener.fileno())], cwd=ROOT, start_new_session=True, pass_fds=[listener.fileno()]
    )
    processes.append(process)
    return process


def stop_leftovers(session):
    """Kill what a dead process left running in its session, before it is started again. Pushpin's
    runner starts its services in process groups of their own: a runner killed without stopping
    them (SIGKILL, the OOM killer) leaves them holding its port, and every Pushpin started again
    then failed to bind it."""
    if not Path("/proc").is_dir():
        return  # not Linux: nothing to find them by
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == session:
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue  # gone meanwhile


def main():
    port = int(os.environ.setdefault("PORT", "8000"))
    web_processes = int(os.environ.get("WEB_PROCESSES", "2"))
    worker_processes = int(os.environ.get("WORKER_PROCESSES", "2"))
    processes = []
    stop_on_sigterm()
    try:
        pushpin = pushpin_binary()
        redis_server = ensure_redis(daemonize=False)
        if redis_server is not None:
            processes.append(redis_server)
        if not os.environ.get("GITHUB_API_URL"):
            os.environ.update(start_github_simulator(processes, port))
        listener = web_socket()
        pushpin_conf, os.environ["GRIP_URL"] = configure_pushpin(port, listener.getsockname()[1])
        # What dies is started again: the web processes, the workers and Pushpin itself.
        restarts = {}

        def keep_running(start_one):
            process = start_one()
            restarts[process] = start_one
            return process

        keep_running(lambda: start([pushpin, "--config", str(pushpin_conf), "--merge-output"], processes))
        for _ in range(worker_processes):
            keep_running(lambda: start(worker_command(), processes))
        for _ in range(web_processes):
            keep_running(lambda: start_web(listener, processes))
        base = f"http://127.0.0.1:{port}"
        if not wait_until_serving(f"{base}/accounts/login/", processes):
            sys.exit("The cluster did not start; see the output above.")
        print(f"Pushpin on port {port} in front of {web_processes} web processes; {worker_processes} workers.")
        print_how_to_log_in(base)
        while True:
            time.sleep(0.5)
            for process, start_one in list(restarts.items()):
                if process.poll() is not None:
                    name = " ".join(process.args[:4])
                    print(
                        f"{name} (pid {process.pid}) exited with {process.returncode}; starting it again.", flush=True
                    )
                    processes.remove(process)
                    del restarts[process]
                    # Each was started in a session of its own (start_new_session), named by its pid.
                    stop_leftovers(process.pid)
                    keep_running(start_one)
            if any(process.poll() is not None for process in processes):
                sys.exit("Redis or the GitHub simulator stopped; stopping the others.")
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
    finally:
        stop(list(reversed(processes)))


if __name__ == "__main__":
    main()
