"""`make run` from this checkout: serves the login page with the GitHub simulator beside it, the admin
account it says how to create works as printed, and SIGTERM stops every process it started."""

import json
import os
import re
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
import requests

from tests.banners import create_admin_as_printed, run_at_a_terminal
from tests.helpers import free_port, http_status, wait_for
from tests.stack import processes_with_marker

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def make_run(tmp_path):
    marker = f"MAKE_RUN_TEST={uuid.uuid4()}"
    port = free_port()
    env = {
        **{name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"},
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "GITHUB_API_URL": "",
        marker.split("=")[0]: marker.split("=")[1],
    }
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
    yield process, port, marker, output
    if process.poll() is None:
        process.kill()
    for pid in processes_with_marker(marker):
        os.kill(pid, signal.SIGKILL)


def test_make_run_serves_the_app_its_printed_commands_work_and_sigterm_stops_it(make_run):
    """Costs 6-15 s: make run itself, with its simulator, worker and web server, and what a person types."""
    process, port, marker, output = make_run
    url = f"http://127.0.0.1:{port}/accounts/login/"
    wait_for(
        lambda: any("Sign up at" in line for line in output) or process.poll() is not None,
        timeout=120,
        message="make run to print how to log in",
    )
    assert process.poll() is None, "".join(output)
    assert http_status(url) == 200
    assert any("GitHub simulator at http://127.0.0.1:" in line for line in output)
    assert len(processes_with_marker(marker)) >= 5  # make, the supervisor, the simulator, the worker, uvicorn
    assert "Install the GitHub App" in onboarding_page_of_a_new_user(f"http://127.0.0.1:{port}")
    admin_page, status = create_admin_as_printed(output, f"http://127.0.0.1:{port}")
    assert (admin_page, status) == (f"http://127.0.0.1:{port}/admin/", 200)
    assert len(json.loads(run_the_readmes_simulator_command(output))["added"]) == 1

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) != 0
    wait_for(lambda: not processes_with_marker(marker), timeout=20, message="every process to stop")
    assert http_status(url) is None


def onboarding_page_of_a_new_user(base):
    """Signs up, as a newcomer to `make run` does, and returns the onboarding page."""
    http = requests.Session()
    http.get(f"{base}/accounts/signup/", timeout=10).raise_for_status()
    password = "a-long-unusual-pass-41"
    form = {"username": "newcomer", "password1": password, "password2": password}
    signed_up = http.post(
        f"{base}/accounts/signup/", data={**form, "csrfmiddlewaretoken": http.cookies["csrftoken"]}, timeout=10
    )
    assert signed_up.url == f"{base}/onboarding/", signed_up.text
    return signed_up.text


def run_the_readmes_simulator_command(output):
    """The README's curl that adds a member on the simulator's side, with the simulator's URL that
    make run printed; returns what it printed."""
    [command] = re.findall(r"^curl .*SIMULATOR_URL.*$", (ROOT / "README.md").read_text(), re.MULTILINE)
    [simulator_url] = re.findall(r"GitHub simulator at (http://\S+)", "".join(output))
    return run_at_a_terminal(command.replace("SIMULATOR_URL", simulator_url), answers=[])
