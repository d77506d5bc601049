import signal

from django.core.management.base import BaseCommand

from github_simulator import Simulator

# Something to see in make run when no --org is given.
DEFAULT_ORGS = {"acme": 250}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _organization(value: str) -> tuple[str, int]:
    login, _, size = value.partition("=")
    if not login or not size.isdigit() or int(size) < 1:
        raise ValueError(value)
    return login, int(size)


class Command(BaseCommand):
    help = "Serve the GitHub simulator (SPEC §7) until SIGTERM or Ctrl-C."

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
        parser.add_argument("--latency", type=int, default=0, metavar="MS", help="Added to every request.")

    def handle(self, *args, host, port, org, latency, **options):
        # SIGTERM is how make run and the tests stop the simulator: a clean exit, like Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
        simulator = Simulator(orgs=dict(org) if org else DEFAULT_ORGS, latency_ms=latency, host=host, port=port)
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
