"""`make run`: Redis if none answers, the GitHub simulator unless GITHUB_API_URL is set, the
Dramatiq worker and the web server, all stopped together on Ctrl-C or SIGTERM."""

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from services import ensure_redis

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def wait_until_serving(url, processes, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (our own http:// URL)
                return True
        except OSError:
            time.sleep(0.1)
    return False


DEMO_ORGANIZATION = "demo-org=1500"
# The simulator is also this server's GitHub App (docs/github-simulator.md): development values,
# never a real App's.
DEMO_APP = {
    "GITHUB_APP_ID": "424242",
    "GITHUB_APP_SLUG": "member-sync-simulator",
    "GITHUB_APP_CLIENT_ID": "Iv1.member-sync-dev",
    "GITHUB_APP_CLIENT_SECRET": "member-sync-dev-app-secret",
    "GITHUB_WEBHOOK_SECRET": "member-sync-dev-webhook-secret",
}


def start_github_simulator(processes, port):
    """The GitHub simulator, unless GITHUB_API_URL points at a real GitHub. Returns the
    environment that points the app at it, as an OAuth App and as a GitHub App."""
    key_file = Path(tempfile.mkdtemp(prefix="member-sync-")) / "github-app.pem"  # written by the simulator
    base = f"http://127.0.0.1:{port}"
    app_options = [
        "--app-id", DEMO_APP["GITHUB_APP_ID"],
        "--app-slug", DEMO_APP["GITHUB_APP_SLUG"],
        "--app-client-id", DEMO_APP["GITHUB_APP_CLIENT_ID"],
        "--app-client-secret", DEMO_APP["GITHUB_APP_CLIENT_SECRET"],
        "--app-private-key-file", str(key_file),
        "--app-webhook-url", f"{base}/github/webhook/",
        "--app-webhook-secret", DEMO_APP["GITHUB_WEBHOOK_SECRET"],
        "--app-setup-url", f"{base}/github/app/setup/",
    ]  # fmt: skip
    process = subprocess.Popen(
        [PYTHON, "manage.py", "github_simulator", "--port", "0", "--org", DEMO_ORGANIZATION, *app_options],
        cwd=ROOT,
        # Its command is installed with DEBUG on only, and needs none of the secrets DEBUG off asks for.
        env={**os.environ, "DEBUG": "1"},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    processes.append(process)
    for line in process.stdout:
        match = re.search(r"http://[\d.]+:\d+", line)
        if match:
            url = match.group(0)
            # Keep reading what it prints, so that a full pipe never blocks it.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            print(f"GitHub simulator at {url} (organization {DEMO_ORGANIZATION})", flush=True)
            return {
                "GITHUB_WEB_URL": url,
                "GITHUB_API_URL": url,
                "GITHUB_GRAPHQL_URL": f"{url}/graphql",
                "GITHUB_CLIENT_ID": os.environ.get("GITHUB_CLIENT_ID") or "member-sync-dev",
                "GITHUB_CLIENT_SECRET": os.environ.get("GITHUB_CLIENT_SECRET") or "member-sync-dev-secret",
                **DEMO_APP,
                "GITHUB_APP_PRIVATE_KEY_FILE": str(key_file),
            }
    sys.exit("The GitHub simulator did not start; see the output above.")


def stop(processes):
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def worker_command():
    threads = ["--processes", "1", "--threads", "4"]
    return [PYTHON, "manage.py", "rundramatiq", *threads, "--worker-shutdown-timeout", "10000"]


def web_command(*bind):
    """uvicorn serving the app, bound by `bind` (--host and --port, or --fd)."""
    return [
        PYTHON, "-m", "uvicorn", "config.asgi:application", *bind,
        # Its access log would print query strings, the OAuth callback's code among them.
        "--no-access-log",
        # uvicorn waits for open event streams forever without it
        # (docs/architecture.md#library-pitfalls).
        "--timeout-graceful-shutdown", "3",
    ]  # fmt: skip


def start(command, processes, **popen):
    # Each child gets its own session so that Ctrl-C reaches only the supervisor, which then stops
    # them in order and waits for them.
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True, **popen)
    processes.append(process)
    return process


def create_admin_command():
    """The command, to paste into a shell in this folder, that creates an admin account in the
    database this server uses. DEBUG=1 because manage.py asks for the production secrets without
    it, and the account needs none of them."""
    database = os.environ.get("DATABASE_URL")
    words = [f"DATABASE_URL={shlex.quote(database)}"] if database else []
    return " ".join([*words, "DEBUG=1", ".venv/bin/python", "manage.py", "createsuperuser"])


def print_how_to_log_in(base):
    print(
        f"\nMember Sync is running at {base}/\n"
        f"  Sign up at {base}/accounts/signup/ (or log in at {base}/accounts/login/).\n"
        f"  The Django admin is at {base}/admin/; create an admin account with:\n"
        f"    {create_admin_command()}\n"
        "  Press Ctrl-C to stop.\n",
        flush=True,
    )


def stop_on_sigterm():
    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)


def main():
    port = os.environ.setdefault("PORT", "8000")
    processes = []
    stop_on_sigterm()
    try:
        redis_server = ensure_redis(daemonize=False)
        if redis_server is not None:
            processes.append(redis_server)
        if not os.environ.get("GITHUB_API_URL"):
            os.environ.update(start_github_simulator(processes, port))
        start(worker_command(), processes)
        start(web_command("--host", "127.0.0.1", "--port", port), processes)
        base = f"http://127.0.0.1:{port}"
        if not wait_until_serving(f"{base}/accounts/login/", processes):
            sys.exit("The web server did not start; see the output above.")
        print_how_to_log_in(base)
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        sys.exit("A process stopped unexpectedly; stopping the others.")
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
    finally:
        stop(list(reversed(processes)))


if __name__ == "__main__":
    main()
