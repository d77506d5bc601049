"""Everything the simulator remembers between requests, behind one lock."""

import threading
from dataclasses import dataclass, field

from github_simulator.faults import FaultBook
from github_simulator.oauth import Codes
from github_simulator.organizations import Organizations
from github_simulator.tokens import Tokens


@dataclass
class State:
    lock: threading.RLock
    orgs: Organizations
    tokens: Tokens
    faults: FaultBook
    codes: Codes
    url: str = ""  # web and API base alike, known once the server listens
    latency_ms: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def create(cls, rate_limit: int) -> "State":
        lock = threading.RLock()
        return cls(lock, Organizations(lock), Tokens(lock, rate_limit), FaultBook(lock), Codes(lock))

    def record(self, method: str, target: str) -> None:
        with self.lock:
            self.requests.append((method, target))
