"""The simulator's Python API: start and stop the server, and set up what GitHub will answer."""

import threading
import time

from github_simulator import webhooks
from github_simulator.app import PERMISSIONS, SETTINGS, GitHubApp, Installation, Installations
from github_simulator.faults import Fault, FaultBook
from github_simulator.oauth import Codes
from github_simulator.organizations import Member, Organizations, SimulatedOrg
from github_simulator.server import SimulatorServer
from github_simulator.teams import Team
from github_simulator.tokens import RATE_LIMIT, Tokens
from github_simulator.webhooks import Webhooks


class Simulator:
    """A GitHub that runs on 127.0.0.1: the OAuth web flow, the REST and GraphQL endpoints the product
    uses (at github.com's paths and at GitHub Enterprise Server's /api/v3 and /api/graphql), rate limits,
    latency and injected faults. The viewer of every token is octocat, an admin of every organization
    until SimulatedOrg.remove_viewer().

    It is also a GitHub App (self.app): installed on organizations from its install page, minting
    installation tokens for JWTs signed with its private key, and sending webhook deliveries to its
    webhook URL when membership changes through the methods below or the control API."""

    def __init__(
        self, orgs=None, latency_ms=0, host="127.0.0.1", port=0, *, rate_limit=RATE_LIMIT, app=None, teams=None
    ):
        self._initial_orgs = dict(orgs or {})
        # The number of generated teams of each organization that has some (by login).
        self._initial_teams = {login.lower(): count for login, count in (teams or {}).items()}
        self._address = (host, port)
        # Everything the simulator remembers between requests is behind this one lock.
        self.lock = threading.RLock()
        self.orgs = Organizations(self.lock)
        self._initial_rate_limit = rate_limit
        self.tokens = Tokens(self.lock, rate_limit)
        self.faults = FaultBook(self.lock)
        self.codes = Codes(self.lock)
        self.app = app or GitHubApp()
        self._initial_app_settings = {name: getattr(self.app, name) for name in SETTINGS}
        self.installations = Installations(self.lock)
        self.webhooks = Webhooks(self.lock, self.app)
        self.url = ""  # web and API base alike, known once the server listens
        self._requests: list[tuple[str, str]] = []
        self._credentials: list[tuple[str, str, str]] = []
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
                self.orgs.add(login, size, self._initial_teams.get(login.lower(), 0))
            self.faults.clear()
            self.codes.clear()
            self.tokens.set_rate_limit(self._initial_rate_limit)
            self._requests.clear()
            self._credentials.clear()
            self.tokens.revoked.clear()
            self.latency_ms = 0
            self.app.configure(**self._initial_app_settings)
            self.installations.clear()
            self.webhooks.clear()

    def add_org(self, login: str, size: int, teams: int = 0) -> SimulatedOrg:
        return self.orgs.add(login, size, teams)

    def org(self, login: str) -> SimulatedOrg:
        if (org := self.orgs.find(login)) is None:
            raise KeyError(f"The simulator has no organization called {login}.")
        return org

    def issue_token(self, scopes=("read:org",)) -> str:
        return self.tokens.issue(scopes)

    def revoke_token(self, token: str) -> None:
        self.tokens.revoke(token)

    # The App: its installations, and the changes that GitHub tells it about by webhook. Each change
    # returns the GUIDs of the deliveries it queued (none without a webhook URL or an installation).

    def install_app(self, login: str) -> Installation:
        installation, created = self.installations.install(self.org(login).id)
        if created:
            self.webhooks.send("installation", installation, webhooks.installation_event(self, installation, "created"))
        return installation

    def installation(self, installation_id: int) -> Installation:
        if (found := self.installations.get(installation_id)) is None:
            raise KeyError(f"The App has no installation {installation_id}.")
        return found

    def suspend_installation(self, installation_id: int) -> list[str]:
        installation = self.installation(installation_id)
        # GitHub tells the App before it stops sending it anything.
        guids = self._send("installation", installation, webhooks.installation_event(self, installation, "suspend"))
        installation.suspended_at = time.time()
        self.tokens.revoke_installation(installation)
        return guids

    def unsuspend_installation(self, installation_id: int) -> list[str]:
        installation = self.installation(installation_id)
        installation.suspended_at = None
        return self._send("installation", installation, webhooks.installation_event(self, installation, "unsuspend"))

    def uninstall_app(self, installation_id: int) -> list[str]:
        installation = self.installation(installation_id)
        guids = self._send("installation", installation, webhooks.installation_event(self, installation, "deleted"))
        self.installations.remove(installation)
        self.tokens.revoke_installation(installation)
        return guids

    def request_permissions(self, installation_id: int) -> None:
        """The App's owner added the Members permission, which this installation has not accepted yet:
        until accept_new_permissions, its tokens, those already minted too, may not read members."""
        installation = self.installation(installation_id)
        with self.lock:
            installation.permissions = {name: level for name, level in PERMISSIONS.items() if name != "members"}

    def accept_new_permissions(self, installation_id: int) -> list[str]:
        """An owner of the organization accepted the App's new permissions (an `installation`
        new_permissions_accepted delivery)."""
        installation = self.installation(installation_id)
        with self.lock:
            installation.permissions = dict(PERMISSIONS)
        return self._send(
            "installation", installation, webhooks.installation_event(self, installation, "new_permissions_accepted")
        )

    def revoke_installation_tokens(self, installation_id: int) -> None:
        """Every token minted for the installation so far is refused (401 Bad credentials), as when
        GitHub revoked them; new ones can still be minted."""
        self.tokens.revoke_installation(self.installation(installation_id))

    def add_members(self, login: str, n: int) -> tuple[list[Member], list[str]]:
        org = self.org(login)
        added = org.add_members(n)
        return added, self._member_events(org, "member_added", added)

    def remove_members(self, login: str, n: int = 0, logins=()) -> tuple[list[Member], list[str]]:
        org = self.org(login)
        removed = org.remove_members(n) + [org.remove_member(member_login) for member_login in logins]
        return removed, self._member_events(org, "member_removed", removed)

    def rename_org(self, login: str, new_login: str) -> list[str]:
        org = self.org(login)
        org.rename(new_login)
        return self._send("organization", self._installation_on(org), webhooks.organization_renamed(self, org, login))

    def delete_org(self, login: str) -> list[str]:
        org = self.org(login)
        installation = self._installation_on(org)
        guids = self._send("organization", installation, webhooks.organization_deleted(self, org))
        if installation is not None:
            self.installations.remove(installation)
            self.tokens.revoke_installation(installation)
        self.orgs.remove(org)
        return guids

    # Teams. Each change returns the team as it is afterwards (or the teams deleted) and the GUIDs of the
    # deliveries sent: `team` created, edited and deleted, and `membership` added and removed (scope
    # team). A new role on a team sends nothing, as on GitHub, whose membership event has no such action.

    def create_team(self, login: str, name: str, **options) -> tuple[Team, list[str]]:
        """options: description, privacy ("closed" or "secret"; GitHub's default: secret, closed for a
        child team), parent (a slug), maintainers and members (logins)."""
        org = self.org(login)
        with self.lock:
            team = org.teams.create(name, **options)
            return team, self._send("team", self._installation_on(org), webhooks.team_event(self, org, "created", team))

    def edit_team(self, login: str, slug: str, **changes) -> tuple[Team, list[str]]:
        """changes: name (the slug follows it), description, privacy, parent (a slug, or None: a root team)."""
        org = self.org(login)
        with self.lock:
            team, before = org.teams.edit(slug, **changes)
            payload = webhooks.team_event(self, org, "edited", team, before)
            return team, self._send("team", self._installation_on(org), payload)

    def delete_team(self, login: str, slug: str) -> tuple[list[Team], list[str]]:
        """Delete the team and its child teams (a `team` deleted delivery for each)."""
        org = self.org(login)
        with self.lock:
            installation = self._installation_on(org)
            # The payloads name each team's parent: made before the teams are gone.
            doomed = org.teams.by_slug(slug)
            payloads = [
                webhooks.team_event(self, org, "deleted", team) for team in (doomed, *org.teams.descendants(doomed))
            ]
            deleted = org.teams.delete(slug)
            return deleted, [guid for payload in payloads for guid in self._send("team", installation, payload)]

    def set_team_membership(self, login: str, slug: str, member: str, role: str = "member") -> tuple[Team, list[str]]:
        """Add the organization's member to the team, or give it another role there."""
        org = self.org(login)
        with self.lock:
            team, index, before = org.teams.set_membership(slug, member, role)
            if before is not None:
                return team, []
            payload = webhooks.team_membership_event(self, org, "added", team, org.member(index))
            return team, self._send("membership", self._installation_on(org), payload)

    def remove_team_membership(self, login: str, slug: str, member: str) -> tuple[Team, list[str]]:
        org = self.org(login)
        with self.lock:
            team, index = org.teams.remove_membership(slug, member)
            payload = webhooks.team_membership_event(self, org, "removed", team, org.member(index))
            return team, self._send("membership", self._installation_on(org), payload)

    def _member_events(self, org: SimulatedOrg, action: str, members: list[Member]) -> list[str]:
        installation = self._installation_on(org)
        return [
            guid
            for member in members
            for guid in self._send("organization", installation, webhooks.member_event(self, org, action, member))
        ]

    def _installation_on(self, org: SimulatedOrg) -> Installation | None:
        return self.installations.for_org(org.id)

    def _send(self, event: str, installation, payload: dict) -> list[str]:
        guid = self.webhooks.send(event, installation, payload)
        return [guid] if guid else []

    def set_latency(self, ms: int) -> None:
        self.latency_ms = ms

    def set_rate_limit(self, limit: int | None) -> None:
        """Each token's hourly budget, REST and GraphQL apart; None turns rate limiting off, as on a
        GitHub Enterprise Server that has it off: no X-RateLimit-* headers, GraphQL's rateLimit null,
        and GET /rate_limit a 404."""
        if limit is not None and (type(limit) is not int or limit < 0):
            raise ValueError("The rate limit is a number of requests an hour, or null.")
        self.tokens.set_rate_limit(limit)

    def inject(self, fault: str, *, times: int | None = 1, **options) -> Fault:
        """Make the next times requests (None: every one until clear_faults) fail as GitHub would; the
        fault names and their options are faults.FAULTS."""
        return self.faults.inject(fault, times=times, **options)

    def clear_faults(self) -> None:
        self.faults.clear()

    def record(self, method: str, target: str, credential: str = "") -> None:
        with self.lock:
            self._requests.append((method, target))
            self._credentials.append((method, target, credential))

    @property
    def request_count(self) -> int:
        return len(self._requests)

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self._requests)

    @property
    def credentials(self) -> list[tuple[str, str, str]]:
        """Every request as requests has them, with the kind of credential it carried (tokens.kind_of:
        "gho", "ghu", "ghs", "jwt", "basic", or "" for none): who GitHub was asked by."""
        with self.lock:
            return list(self._credentials)
