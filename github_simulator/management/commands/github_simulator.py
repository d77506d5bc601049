import os
import signal
from pathlib import Path

from django.core.management.base import BaseCommand

from github_simulator import Simulator
from github_simulator.app import APP_ID, APP_SLUG, GitHubApp

# Something to see in make run when no --org is given.
DEFAULT_ORGS = {"acme": 250}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _organization(value: str) -> tuple[str, int]:
    login, _, size = value.partition("=")
    if not login or not size.isdigit() or int(size) < 1:
        raise ValueError(value)
    return login, int(size)


def _teams(value: str) -> tuple[str, int]:
    login, _, count = value.partition("=")
    if not login or not count.isdigit():
        raise ValueError(value)
    return login, int(count)


class Command(BaseCommand):
    help = "Serve the GitHub simulator (docs/github-simulator.md) until SIGTERM or Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=0, help="0 picks a free port; the line printed names it.")
        parser.add_argument(
            "--org",
            action="append",
            type=_organization,
            metavar="LOGIN=N",
            help="An organization of N members (octocat among them); repeatable. Default: acme=250.",
        )
        parser.add_argument(
            "--teams",
            action="append",
            type=_teams,
            metavar="LOGIN=T",
            help="T teams in the organization LOGIN, nested about three deep, its members in them; repeatable.",
        )
        parser.add_argument("--latency", type=int, default=0, metavar="MS", help="Added to every request.")
        app = parser.add_argument_group("the simulator as a GitHub App")
        app.add_argument("--app-id", type=int, default=APP_ID)
        app.add_argument("--app-slug", default=APP_SLUG)
        app.add_argument("--app-client-id", help="For the App's user authorization. Default: a random one.")
        app.add_argument("--app-client-secret", help="Default: a random one.")
        app.add_argument(
            "--app-private-key-file",
            type=Path,
            help="The App's private key (PEM), read if the file exists, else generated and written there.",
        )
        app.add_argument("--app-webhook-url", help="Where the App's webhook deliveries go. Default: nowhere.")
        app.add_argument("--app-webhook-secret", help="What deliveries are signed with. Default: unsigned.")
        app.add_argument("--app-setup-url", help="Where the install page sends the user with installation_id.")

    def handle(self, *args, host, port, org, teams, latency, **options):
        # SIGTERM is how make run and the tests stop the simulator: a clean exit, like Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
        simulator = Simulator(
            orgs=dict(org) if org else DEFAULT_ORGS,
            teams=dict(teams or ()),
            latency_ms=latency,
            host=host,
            port=port,
            app=_app(options),
        )
        try:
            simulator.start()
            self.stdout.write(f"GitHub simulator listening on {simulator.url}")
            self.stdout.flush()
            while True:
                signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            simulator.stop()


def _app(options) -> GitHubApp:
    registration = {"id": options["app_id"], "slug": options["app_slug"]}
    for name in ("client_id", "client_secret"):
        if options[f"app_{name}"]:
            registration[name] = options[f"app_{name}"]
    key_file = options["app_private_key_file"]
    if key_file and key_file.exists():
        registration["private_key_pem"] = key_file.read_text()
    app = GitHubApp(
        **registration,
        webhook_url=options["app_webhook_url"],
        webhook_secret=options["app_webhook_secret"],
        setup_url=options["app_setup_url"],
    )
    if key_file and not key_file.exists():
        # Readable by its owner only, like any private key.
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(app.private_key_pem)
    return app
