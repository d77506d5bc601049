"""The simulator's Python API: start and stop the server, and set up what GitHub will answer."""

import threading

from github_simulator.faults import Fault, FaultBook
from github_simulator.oauth import Codes
from github_simulator.organizations import Organizations, SimulatedOrg
from github_simulator.server import SimulatorServer
from github_simulator.tokens import RATE_LIMIT, Tokens


class Simulator:
    """A GitHub that runs on 127.0.0.1: the OAuth web flow, the REST and GraphQL endpoints the product
    uses (at github.com's paths and at GitHub Enterprise Server's /api/v3 and /api/graphql), rate limits,
    latency and injected faults. The viewer of every token is octocat, an admin of every organization
    until SimulatedOrg.remove_viewer()."""

    def __init__(self, orgs=None, latency_ms=0, host="127.0.0.1", port=0, *, rate_limit=RATE_LIMIT):
        self._initial_orgs = dict(orgs or {})
        self._address = (host, port)
        # Everything the simulator remembers between requests is behind this one lock.
        self.lock = threading.RLock()
        self.orgs = Organizations(self.lock)
        self.tokens = Tokens(self.lock, rate_limit)
        self.faults = FaultBook(self.lock)
        self.codes = Codes(self.lock)
        self.url = ""  # web and API base alike, known once the server listens
        self._requests: list[tuple[str, str]] = []
        self._server: SimulatorServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()
        self.latency_ms = latency_ms

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def start(self) -> None:
        self._server = SimulatorServer(self._address, self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="github-simulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def reset(self) -> None:
        """Go back to the organizations given to the constructor, without faults or latency, counters at 0;
        issued tokens stay valid."""
        with self.lock:
            self.orgs.clear()
            for login, size in self._initial_orgs.items():
                self.orgs.add(login, size)
            self.faults.clear()
            self.codes.clear()
            self.tokens.reset_budgets()
            self._requests.clear()
            self.latency_ms = 0

    def add_org(self, login: str, size: int) -> SimulatedOrg:
        return self.orgs.add(login, size)

    def org(self, login: str) -> SimulatedOrg:
        if (org := self.orgs.find(login)) is None:
            raise KeyError(f"The simulator has no organization called {login}.")
        return org

    def issue_token(self, scopes=("read:org",)) -> str:
        return self.tokens.issue(scopes)

    def revoke_token(self, token: str) -> None:
        self.tokens.revoke(token)

    def set_latency(self, ms: int) -> None:
        self.latency_ms = ms

    def inject(self, fault: str, *, times: int | None = 1, **options) -> Fault:
        """Make the next times requests (None: every one until clear_faults) fail as GitHub would; the
        fault names and their options are faults.FAULTS."""
        return self.faults.inject(fault, times=times, **options)

    def clear_faults(self) -> None:
        self.faults.clear()

    def record(self, method: str, target: str) -> None:
        with self.lock:
            self._requests.append((method, target))

    @property
    def request_count(self) -> int:
        return len(self._requests)

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self._requests)
