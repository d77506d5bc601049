"""The simulator's Python API: start and stop the server, and set up what GitHub will answer."""

import threading

from github_simulator.faults import Fault
from github_simulator.organizations import SimulatedOrg
from github_simulator.server import SimulatorServer
from github_simulator.state import State
from github_simulator.tokens import RATE_LIMIT


class Simulator:
    """A GitHub that runs on 127.0.0.1: the OAuth web flow, the REST and GraphQL endpoints the product
    uses, rate limits, latency and injected faults. The viewer of every token is octocat, a member of
    every organization."""

    def __init__(self, orgs=None, latency_ms=0, host="127.0.0.1", port=0, *, rate_limit=RATE_LIMIT):
        self._initial_orgs = dict(orgs or {})
        self._address = (host, port)
        self.state = State.create(rate_limit)
        self._server: SimulatorServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()
        self.set_latency(latency_ms)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def url(self) -> str:
        return self.state.url

    def start(self) -> None:
        self._server = SimulatorServer(self._address, self)
        host, port = self._server.server_address[:2]
        self.state.url = f"http://{host}:{port}"
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
        """Back to the organizations given to the constructor, without faults or latency, counters at 0;
        issued tokens stay valid."""
        state = self.state
        with state.lock:
            state.orgs.clear()
            for login, size in self._initial_orgs.items():
                state.orgs.add(login, size)
            state.faults.clear()
            state.codes.clear()
            state.tokens.reset_budgets()
            state.requests.clear()
            state.latency_ms = 0

    def add_org(self, login: str, size: int) -> SimulatedOrg:
        return self.state.orgs.add(login, size)

    def org(self, login: str) -> SimulatedOrg:
        if (org := self.state.orgs.find(login)) is None:
            raise KeyError(f"The simulator has no organization called {login}.")
        return org

    def issue_token(self, scopes=("read:org",)) -> str:
        return self.state.tokens.issue(scopes)

    def revoke_token(self, token: str) -> None:
        self.state.tokens.revoke(token)

    def set_latency(self, ms: int) -> None:
        if not (isinstance(ms, int | float) and ms >= 0):
            raise ValueError("Latency is a number of milliseconds, at least 0.")
        self.state.latency_ms = ms

    def inject(self, fault: str, *, times: int | None = 1, **options) -> Fault:
        return self.state.faults.inject(fault, times=times, **options)

    def clear_faults(self) -> None:
        self.state.faults.clear()

    @property
    def request_count(self) -> int:
        return len(self.state.requests)

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self.state.lock:
            return list(self.state.requests)
