"""The real parts, started for a test by scripts/stack.py: a `rundramatiq` worker and a uvicorn web
server sharing the test database and Redis, Redis, PostgreSQL and Pushpin of the test's own, and
`make cluster`."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from django.db import connection

from scripts.stack import (
    kill_session,
    pushpin_configuration,
    start,
    start_pushpin,
    start_redis,
    stop,
    wait_until_serving,
    web_command,
    worker_command,
)
from tests.helpers import free_port, wait_for
from tests.programs import postgres_program

ROOT = Path(__file__).resolve().parent.parent


def test_database_url():
    """The URL of the database this test run uses, for processes started beside it."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    host, port, user = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432, settings["USER"]
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


def stack_environment(**overrides):
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "SECRET_KEY": os.environ.get("SECRET_KEY", "django-insecure-test-only-key"),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def github_environment(github_simulator):
    """What points a process started beside the tests at the simulator, as the GitHub of an OAuth App."""
    return {
        "GITHUB_API_URL": github_simulator.url,
        "GITHUB_GRAPHQL_URL": f"{github_simulator.url}/graphql",
        "GITHUB_WEB_URL": github_simulator.url,
        "GITHUB_CLIENT_ID": "member-sync-test",
        "GITHUB_CLIENT_SECRET": "member-sync-test-secret",
    }


@contextmanager
def running(process, url=None, **serving):
    """The process, once it serves `url` (scripts/stack.py:wait_until_serving), and stopped afterwards."""
    try:
        assert url is None or wait_until_serving(url, [process], **serving), f"{process.args[:4]} serving {url}"
        yield process
    finally:
        stop(process)


@contextmanager
def worker(env, *, threads=2):
    with running(start(worker_command(threads), env)) as process:
        yield process


@contextmanager
def web_server(env, port=None, stderr=None, ready_path="/accounts/login/"):
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = web_command("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning")
    with running(start(command, env, stderr=stderr), url + ready_path) as process:
        process.url = url
        yield process


def session_cookies(user):
    """The cookies of a session in which `user` is logged in, for a client of a server started here."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}


def sign_in(context, url, user):
    """Sign `user` in to the server at `url` in a Playwright browser context (in place of any other)."""
    context.clear_cookies()
    context.add_cookies([{"name": name, "value": value, "url": url} for name, value in session_cookies(user).items()])


class OwnRedis:
    """A redis-server of the test's own, without persistence, which the test can restart: what an
    operator sees when Redis goes away for a few seconds and comes back empty."""

    def __init__(self):
        self.url = f"redis://127.0.0.1:{free_port()}/0"
        self.process = None

    def start(self):
        self.process = start_redis(self.url)

    def stop(self):
        stop(self.process)

    def restart(self):
        self.stop()
        self.start()


@contextmanager
def own_redis():
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class OwnPostgres:
    """A PostgreSQL server of the test's own (trust authentication, superuser root), which the test
    can restart without disturbing the machine's server that other test runs share."""

    def __init__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="member-sync-postgres-"))
        self.port = free_port()
        self.url = f"postgres://root@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            # initdb refuses to run as root: the server's files and processes are the postgres user's.
            shutil.chown(self.directory, "postgres")
        self._as_postgres("initdb", "--pgdata", str(self.directory / "data"), "--auth", "trust", "--username", "root")

    def _as_postgres(self, program, *args):
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*as_user, postgres_program(program), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=self.directory,
        )

    def start(self):
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
        data, log = str(self.directory / "data"), str(self.directory / "log")
        self._as_postgres("pg_ctl", "start", "--pgdata", data, "--options", options, "--log", log, "--wait")

    def stop(self):
        # fast: the open connections are cut, as when a database server goes away.
        self._as_postgres("pg_ctl", "stop", "--pgdata", str(self.directory / "data"), "--mode", "fast", "--wait")

    def restart(self):
        self.stop()
        self.start()

    def remove(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def own_postgres():
    server = OwnPostgres()
    server.start()
    try:
        yield server
    finally:
        server.remove()


def fresh_postgres_database(name):
    """An empty PostgreSQL database of this name on the server the suite's PostgreSQL settings (or
    127.0.0.1:5432) point at: `make cluster` needs PostgreSQL, whichever database the suite runs on."""
    import psycopg

    drop_postgres_database(name)
    with psycopg.connect(_postgres_url("postgres"), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return _postgres_url(name)


def drop_postgres_database(name):
    import psycopg

    with psycopg.connect(_postgres_url("postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_url(name):
    url = os.environ.get("DATABASE_URL", "")
    base = urlsplit(url if url.startswith("postgres") else "postgres://root@127.0.0.1:5432/postgres")
    return base._replace(path=f"/{name}").geturl()


def processes_with_marker(marker):
    """The pids of every process whose environment holds `marker` (NAME=value)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def pids_connected_to(port, pids):
    """Those of these processes with a TCP connection to this port on 127.0.0.1: which worker is
    the one talking to the GitHub simulator, for instance."""
    sockets = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == port:
            sockets.add(f"socket:[{fields[9]}]")
    connected = []
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in (Path("/proc") / str(pid) / "fd").iterdir()]
        except OSError:
            continue  # it exited meanwhile
        if sockets.intersection(links):
            connected.append(pid)
    return connected


def command_line(pid):
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Cluster:
    """`make cluster` from this checkout, on a PostgreSQL database of its own (unless DATABASE_URL is
    given), with every process it starts marked so that the test can find (and kill) them."""

    def __init__(self, **overrides):
        self.marker = f"MEMBER_SYNC_CLUSTER={uuid.uuid4().hex}"
        # Its own database, so that clusters of tests running side by side never share one.
        self.database = None if "DATABASE_URL" in overrides else f"member_sync_cluster_{self.marker[-8:]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"},
            "PORT": str(self.port),
            "DATABASE_URL": self.database and fresh_postgres_database(self.database),
            "DRAMATIQ_NAMESPACE": f"cluster-{uuid.uuid4().hex[:8]}",
            "EVENTS_CHANNEL_PREFIX": f"cluster-{uuid.uuid4().hex[:8]}-",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **{name: str(value) for name, value in overrides.items()},
        }
        self.env.update([self.marker.split("=")])
        self.output = []
        self.process = None

    def start(self, timeout=180):
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "cluster"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=lambda: self.output.extend(self.process.stdout), daemon=True).start()
        wait_for(
            lambda: any("Sign up at" in line for line in self.output) or self.process.poll() is not None,
            timeout=timeout,
            message="make cluster to print how to log in",
        )
        assert self.process.poll() is None, "".join(self.output)

    def pids(self, program):
        return [pid for pid in processes_with_marker(self.marker) if program in command_line(pid)]

    def web_pids(self):
        return self.pids("uvicorn config.asgi")

    def kill_pushpin(self):
        """SIGKILL Pushpin's runner and the services it started, all in its session (the runner alone
        killed leaves them holding its ports, and the streams). Returns the runner's pid."""
        [runner] = self.pids("pushpin --config")
        kill_session(runner)
        return runner

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for pid in processes_with_marker(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.database:
            drop_postgres_database(self.database)


@contextmanager
def own_pushpin(web_port):
    """Debian's Pushpin on a free port in front of the web server on `web_port`, configured as
    `make cluster` configures it. Yields (its URL, the GRIP_URL that publishes to it)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with pushpin_configuration(port, web_port) as (conf, grip_url):
        # Any answer: the web server behind it may not be started yet.
        with running(start_pushpin(conf, stderr=subprocess.DEVNULL), url, any_answer=True):
            yield url, grip_url


class HeldAnswers:
    """A TCP link from `port` to the server on `to` that can hold back the server's answers: between
    a server and the proxy in front of it, it makes "the server has answered, the proxy has not yet
    read the answer" a state a test can wait for (`held`), instead of a race it hopes to win."""

    def __init__(self, port, *, to):
        self.to = to
        self.held = 0  # connections with an answer waiting
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self):
        self._open.clear()

    def release(self):
        self._open.set()

    def close(self):
        self._listener.close()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.to))
            except OSError:  # the server not started yet: as if the link were not there
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source, target, answers):
        try:
            while data := source.recv(65536):
                if answers and not self._open.is_set():
                    with self._lock:
                        self.held += 1
                    self._open.wait()
                    with self._lock:
                        self.held -= 1
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
