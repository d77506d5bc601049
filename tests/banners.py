"""What `make run` and `make cluster` print for a person to type, typed as a person would: in a
shell in the checkout, at a terminal, with nothing of the test run's environment."""

import os
import pty
import re
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
# A person's shell has none of these; the test run's own would hide a command that needs them.
TEST_RUN_VARIABLES = ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG", "DATABASE_URL", "TOKEN_ENCRYPTION_KEYS")


def printed_admin_command(output):
    """The line printed under "create an admin account with:"."""
    lines = "".join(output).splitlines()
    for index, line in enumerate(lines):
        if "create an admin account with:" in line:
            return lines[index + 1].strip()
    raise AssertionError("no command to create an admin account in:\n" + "\n".join(lines))


def run_at_a_terminal(command, answers, timeout=60):
    """Run `command` in bash at a pseudo-terminal (createsuperuser asks only at one), answering
    each prompt (a regular expression) with its answer, in order. Returns what it printed."""
    controller, terminal = pty.openpty()
    env = {name: value for name, value in os.environ.items() if name not in TEST_RUN_VARIABLES}
    process = subprocess.Popen(
        ["bash", "-c", command], cwd=ROOT, env=env, stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    seen, pending = "", list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(controller, 4096).decode(errors="replace")
            except OSError:
                break  # the command exited and closed the terminal
            if not chunk:
                break
            seen += chunk
            if pending and re.search(pending[0][0], seen.rsplit("\n", 1)[-1]):
                os.write(controller, (pending.pop(0)[1] + "\n").encode())
        process.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, f"{command!r} exited with {process.returncode}:\n{seen}"
    return seen


def create_admin_as_printed(output, base):
    """Create an admin account with the command the banner printed, then sign in to the Django
    admin with it; returns the URL and status of the page the sign-in ends on."""
    password = "an-admin-pass-phrase-73"
    run_at_a_terminal(
        printed_admin_command(output),
        [(r"Username.*: $", "operator"), (r"Email address: $", ""), (r"Password: $", password),
         (r"Password \(again\): $", password)],
    )  # fmt: skip
    http = requests.Session()
    login = f"{base}/admin/login/"
    http.get(login, timeout=10).raise_for_status()
    form = {"username": "operator", "password": password, "csrfmiddlewaretoken": http.cookies["csrftoken"]}
    answer = http.post(f"{login}?next=/admin/", data=form, timeout=10)
    return answer.url, answer.status_code
