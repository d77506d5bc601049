"""The stack's processes, started one way for `make run`, `make cluster`, the tests (tests/stack.py)
and the benchmarks: Redis, the GitHub simulator, Dramatiq workers, uvicorn web processes and
Pushpin; how each starts and stops, and the supervisor that keeps them together.

`python scripts/stack.py run` is `make run`, `cluster` is `make cluster` (docs/interfaces.md#commands),
and `redis` starts Redis for `make test` if none answers, leaving it running."""

import functools
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlparse

import redis

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def start(command, env=None, **popen):
    # A session of its own: Ctrl-C reaches the supervisor alone, which stops its children in order,
    # and what a child leaves behind is found by its session once the child is gone.
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, **popen)


def stop(*processes, timeout=20.0):
    """SIGTERM to each process alone (dramatiq's main process forwards it to its workers; a second
    SIGTERM would kill them at once), then SIGKILL to whatever is left in its session."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        kill_session(process.pid)
        process.wait()


def kill_session(session):
    """SIGKILL every process of a session. Pushpin's runner starts its services in process groups of
    their own: a runner killed without stopping them (SIGKILL, the OOM killer) leaves them holding its
    ports, and every Pushpin started again then failed to bind them."""
    if not Path("/proc").is_dir():  # not Linux: nothing to find them by but the group
        with suppress(OSError):
            os.killpg(session, signal.SIGKILL)
        return
    for entry in Path("/proc").iterdir():
        with suppress(ValueError, OSError):  # not a process, or gone meanwhile
            if os.getsid(int(entry.name)) == session:
                os.kill(int(entry.name), signal.SIGKILL)


def wait_until_serving(url, processes, timeout=60.0, *, any_answer=False):
    """Whether `url` answers 200 (any HTTP answer, with `any_answer`) within `timeout`; False as soon
    as one of `processes` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and all(process.poll() is None for process in processes):
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own http:// URL)
                return True
        except urllib.error.HTTPError:
            if any_answer:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def redis_answers(url):
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping()
    except redis.RedisError:
        return False


def start_redis(url, *, daemonize=False):
    """redis-server on the URL's host and port, without persistence, once it answers; the process,
    or None when daemonized (left running)."""
    server = shutil.which("redis-server")
    if server is None:
        sys.exit(
            f"No Redis answers at {url} and there is no redis-server on PATH.\n"
            "Install Redis (Debian: apt-get install redis-server) or point REDIS_URL at one."
        )
    parsed = urlparse(url)
    args = [server, "--bind", parsed.hostname or "127.0.0.1", "--port", str(parsed.port or 6379)]
    args += ["--save", "", "--appendonly", "no"]
    process = None
    if daemonize:
        subprocess.run([*args, "--daemonize", "yes"], check=True)
    else:
        process = start(args, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if time.monotonic() > deadline:
            sys.exit(f"Redis did not answer at {url} within 10 s.")
        time.sleep(0.05)
    print(f"Started redis-server at {url}", flush=True)
    return process


def redis_if_none(*, daemonize=False):
    """None if Redis answers at REDIS_URL, else the one started there."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    return None if redis_answers(url) else start_redis(url, daemonize=daemonize)


def start_simulator(*options, env=None):
    """The GitHub simulator in a process of its own (options: docs/github-simulator.md), and its URL
    once it serves."""
    args = [PYTHON, "manage.py", "github_simulator", "--port", "0", *options]
    # DEBUG on in its environment alone: its command is installed only then, and needs none of the
    # secrets DEBUG off asks for; the processes it stands in for keep their settings.
    process = start(args, {**(env or os.environ), "DEBUG": "1"}, stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if match := re.search(r"http://[\d.]+:\d+", line):
            # Keep reading what it prints, so that a full pipe never blocks it.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, match.group(0)
    stop(process)
    sys.exit("The GitHub simulator did not start; see the output above.")


def worker_command(threads=4):
    shutdown = ["--worker-shutdown-timeout", "10000"]
    return [PYTHON, "manage.py", "rundramatiq", "--processes", "1", "--threads", str(threads), *shutdown]


def web_command(*options):
    """uvicorn serving the app, bound by `options` (--host and --port, or --fd)."""
    return [
        PYTHON, "-m", "uvicorn", "config.asgi:application", *options,
        # Its access log would print query strings, the OAuth callback's code among them.
        "--no-access-log",
        # uvicorn waits for open event streams forever without it
        # (docs/architecture.md#library-pitfalls).
        "--timeout-graceful-shutdown", "3",
    ]  # fmt: skip


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


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def pushpin_configuration(port, web_port):
    """Pushpin's configuration for PORT in front of `web_port`, in a folder of its own with every other
    port chosen free (so that several run on one machine), and the GRIP_URL the app publishes to it
    with; the folder is removed afterwards."""
    rundir = Path(tempfile.mkdtemp(prefix="member-sync-pushpin-"))
    sig_key, publish_port = secrets.token_urlsafe(32), free_port()
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
    try:
        yield rundir / "pushpin.conf", f"http://127.0.0.1:{publish_port}/?key={sig_key}"
    finally:
        shutil.rmtree(rundir, ignore_errors=True)


def start_pushpin(conf, **popen):
    if not wait_until_free(pushpin_ports(conf)):
        print("Pushpin's ports are still taken after 10 s; starting it anyway.", flush=True)
    return start(["pushpin", "--config", str(conf), "--merge-output"], **popen)


def pushpin_ports(conf: Path) -> list[int]:
    """The ports a Pushpin started with this configuration binds."""
    text = conf.read_text()
    return sorted({int(port) for port in re.findall(r"(?:_port=|tcp://127\.0\.0\.1:)(\d+)", text)})


def wait_until_free(ports, timeout=10.0) -> bool:
    """Whether every port could be bound within `timeout`. A Pushpin killed by a signal leaves its
    services to exit after it, and a new one started before they have let go of its ports failed to
    bind them ("Address already in use") and died."""
    deadline = time.monotonic() + timeout
    while any(not _bindable(port) for port in ports):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _bindable(port) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return False
        return True


class Supervisor:
    """The processes of `make run` or `make cluster`, stopped together (the last started first) on
    Ctrl-C, SIGTERM or the end of one that is not started again."""

    def __init__(self):
        self.processes = []
        self.again = {}  # process: how to start the one that replaces it

    def __enter__(self):
        def on_sigterm(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_sigterm)
        return self

    def __exit__(self, kind, value, traceback):
        if kind is KeyboardInterrupt:
            print("\nStopping…", flush=True)
        stop(*reversed(self.processes))
        return kind is KeyboardInterrupt

    def add(self, process):
        if process is not None:
            self.processes.append(process)

    def keep(self, start_one):
        """Start a process with `start_one`, and again each time it dies."""
        process = start_one()
        self.add(process)
        self.again[process] = start_one

    def watch(self):
        while True:
            time.sleep(0.5)
            for process in [process for process in self.processes if process.poll() is not None]:
                ended = f"{' '.join(process.args[:4])} (pid {process.pid}) exited with {process.returncode}"
                if process not in self.again:
                    sys.exit(f"{ended}; stopping the others.")
                print(f"{ended}; starting it again.", flush=True)
                stop(process)  # and what it left in its session, holding its ports
                self.processes.remove(process)
                self.keep(self.again.pop(process))


# The simulator is also this server's GitHub App (docs/github-simulator.md): development values,
# never a real App's.
DEMO_ORGANIZATION = "demo-org=1500"
DEMO_APP = {
    "GITHUB_APP_ID": "424242",
    "GITHUB_APP_SLUG": "member-sync-simulator",
    "GITHUB_APP_CLIENT_ID": "Iv1.member-sync-dev",
    "GITHUB_APP_CLIENT_SECRET": "member-sync-dev-app-secret",
    "GITHUB_WEBHOOK_SECRET": "member-sync-dev-webhook-secret",
}


def demo_github(supervisor, port):
    """The simulator as this server's GitHub, its OAuth App and its GitHub App, unless GITHUB_API_URL
    points at a real GitHub: sets the environment that points the app at it."""
    if os.environ.get("GITHUB_API_URL"):
        return
    key_file = Path(tempfile.mkdtemp(prefix="member-sync-")) / "github-app.pem"  # written by the simulator
    base = f"http://127.0.0.1:{port}"
    process, url = start_simulator(
        "--org", DEMO_ORGANIZATION,
        "--app-id", DEMO_APP["GITHUB_APP_ID"],
        "--app-slug", DEMO_APP["GITHUB_APP_SLUG"],
        "--app-client-id", DEMO_APP["GITHUB_APP_CLIENT_ID"],
        "--app-client-secret", DEMO_APP["GITHUB_APP_CLIENT_SECRET"],
        "--app-private-key-file", str(key_file),
        "--app-webhook-url", f"{base}/github/webhook/",
        "--app-webhook-secret", DEMO_APP["GITHUB_WEBHOOK_SECRET"],
        "--app-setup-url", f"{base}/github/app/setup/",
    )  # fmt: skip
    supervisor.add(process)
    print(f"GitHub simulator at {url} (organization {DEMO_ORGANIZATION})", flush=True)
    os.environ.update(
        GITHUB_WEB_URL=url,
        GITHUB_API_URL=url,
        GITHUB_GRAPHQL_URL=f"{url}/graphql",
        GITHUB_CLIENT_ID=os.environ.get("GITHUB_CLIENT_ID") or "member-sync-dev",
        GITHUB_CLIENT_SECRET=os.environ.get("GITHUB_CLIENT_SECRET") or "member-sync-dev-secret",
        GITHUB_APP_PRIVATE_KEY_FILE=str(key_file),
        **DEMO_APP,
    )


def welcome(supervisor, base):
    """How to log in, once the site serves; exits if it never does."""
    if not wait_until_serving(f"{base}/accounts/login/", supervisor.processes):
        sys.exit("The web server did not start; see the output above.")
    # DEBUG=1 because manage.py asks for the production secrets without it, and the account needs none.
    database = os.environ.get("DATABASE_URL")
    create_admin = [f"DATABASE_URL={shlex.quote(database)}"] if database else []
    create_admin += ["DEBUG=1", ".venv/bin/python", "manage.py", "createsuperuser"]
    print(
        f"\nMember Sync is running at {base}/\n"
        f"  Sign up at {base}/accounts/signup/ (or log in at {base}/accounts/login/).\n"
        f"  The Django admin is at {base}/admin/; create an admin account with:\n"
        f"    {' '.join(create_admin)}\n"
        "  Press Ctrl-C to stop.\n",
        flush=True,
    )


def run():
    port = os.environ.setdefault("PORT", "8000")
    with Supervisor() as supervisor:
        supervisor.add(redis_if_none())
        demo_github(supervisor, port)
        supervisor.add(start(worker_command()))
        supervisor.add(start(web_command("--host", "127.0.0.1", "--port", port)))
        welcome(supervisor, f"http://127.0.0.1:{port}")
        supervisor.watch()


def install_pushpin_if_missing():
    if shutil.which("pushpin"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("make cluster needs Pushpin: install Debian's (sudo apt-get install pushpin) or see pushpin.org.")
    print("Installing Pushpin from Debian's packages…", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    noninteractive = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "pushpin"], check=True, env=noninteractive)


def cluster():
    port = int(os.environ.setdefault("PORT", "8000"))
    web_processes = int(os.environ.get("WEB_PROCESSES", "2"))
    worker_processes = int(os.environ.get("WORKER_PROCESSES", "2"))
    # The web processes share one listening socket (uvicorn --fd), bound before any of them starts.
    listener = socket.create_server(("127.0.0.1", 0), backlog=2048)
    listener.set_inheritable(True)
    fd = listener.fileno()
    with pushpin_configuration(port, listener.getsockname()[1]) as (conf, grip_url), Supervisor() as supervisor:
        install_pushpin_if_missing()
        supervisor.add(redis_if_none())
        demo_github(supervisor, port)
        os.environ["GRIP_URL"] = grip_url
        supervisor.keep(functools.partial(start_pushpin, conf))
        for _ in range(worker_processes):
            supervisor.keep(functools.partial(start, worker_command()))
        for _ in range(web_processes):
            supervisor.keep(functools.partial(start, web_command("--fd", str(fd)), pass_fds=[fd]))
        print(f"Pushpin on port {port} in front of {web_processes} web processes; {worker_processes} workers.")
        welcome(supervisor, f"http://127.0.0.1:{port}")
        supervisor.watch()


if __name__ == "__main__":
    {"run": run, "cluster": cluster, "redis": functools.partial(redis_if_none, daemonize=True)}[sys.argv[1]]()
