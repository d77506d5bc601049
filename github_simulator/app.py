"""The simulator as a GitHub App: its registration (ids, RSA key pair, OAuth client, webhook and setup
URLs), its installations on organizations, and the check of the JWTs it signs
(https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app)."""

import itertools
import secrets
import time
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = 424242
APP_SLUG = "member-sync-simulator"
TOKEN_LIFETIME_SECONDS = 3600  # an installation token's, as on GitHub
JWT_MAX_LIFETIME_SECONDS = 600
CLOCK_DRIFT_SECONDS = 60  # GitHub's advice: iat a minute in the past
# Members read is what the product needs; metadata read every App has.
PERMISSIONS = {"members": "read", "metadata": "read"}
EVENTS = ["organization"]
_FIRST_INSTALLATION_ID = 60_000_000

# GitHub's words for a JWT it refuses, all answered 401.
UNDECODABLE = "A JSON web token could not be decoded"
EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the "
    "assertion expires"
)
TOO_LONG = "'Expiration time' claim ('exp') is too far in the future"
ISSUED_LATER = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"


def _private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # PKCS#1 ("BEGIN RSA PRIVATE KEY"), the format of the key GitHub lets an App owner download.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


@dataclass
class GitHubApp:
    """The App's registration. The simulator keeps only the public key, as GitHub does; the private key
    is handed to whoever plays the App's owner (the control API, --app-private-key-file)."""

    id: int = APP_ID
    slug: str = APP_SLUG
    client_id: str = field(default_factory=lambda: "Iv23li" + secrets.token_hex(7))
    client_secret: str = field(default_factory=lambda: secrets.token_hex(20))
    private_key_pem: str = field(default_factory=_private_key_pem, repr=False)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    setup_url: str | None = None
    token_lifetime_seconds: float = TOKEN_LIFETIME_SECONDS

    def __post_init__(self):
        self.public_key = serialization.load_pem_private_key(self.private_key_pem.encode(), None).public_key()

    @property
    def name(self) -> str:
        return self.slug.replace("-", " ").title()

    def configure(self, **settings) -> None:
        for name, value in settings.items():
            if name not in SETTINGS:
                raise ValueError(f"The App has no setting {name!r}; it has {', '.join(SETTINGS)}.")
            setattr(self, name, value)

    def settings(self) -> dict:
        return {
            "id": self.id,
            "slug": self.slug,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "private_key": self.private_key_pem,
            **{name: getattr(self, name) for name in SETTINGS},
        }

    def refusal(self, token: str) -> str | None:
        """Return why GitHub would refuse this JWT, or None when it is the App's, current and short-lived."""
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                # iat is checked below, with GitHub's tolerance for a clock a little ahead.
                options={"require": ["exp", "iat", "iss"], "verify_iat": False, "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            return EXPIRED
        except jwt.InvalidTokenError:
            return UNDECODABLE
        # GitHub finds the key by the issuer: another App's id means another key, hence undecodable.
        if str(claims["iss"]) not in (str(self.id), self.client_id):
            return UNDECODABLE
        now = time.time()
        if not isinstance(claims["iat"], int | float) or claims["iat"] > now + CLOCK_DRIFT_SECONDS:
            return ISSUED_LATER
        if claims["exp"] > now + JWT_MAX_LIFETIME_SECONDS:
            return TOO_LONG
        return None


SETTINGS = ("webhook_url", "webhook_secret", "setup_url", "token_lifetime_seconds")


@dataclass
class Installation:
    id: int
    org_id: int
    created_at: float = field(default_factory=time.time)
    suspended_at: float | None = None
    # What its tokens may do: the App's permissions as far as the organization accepted them.
    permissions: dict[str, str] = field(default_factory=lambda: dict(PERMISSIONS))


class Installations:
    """The App's installations, one per organization at most, as GitHub allows."""

    def __init__(self, lock):
        self._lock = lock
        self._by_id: dict[int, Installation] = {}
        self._ids = itertools.count(_FIRST_INSTALLATION_ID)

    def install(self, org_id: int) -> tuple[Installation, bool]:
        """Return the organization's installation and whether it is new."""
        with self._lock:
            if existing := self.for_org(org_id):
                return existing, False
            # Ids go on counting after a reset: an old id never names a new installation.
            installation = Installation(next(self._ids), org_id)
            self._by_id[installation.id] = installation
            return installation, True

    def get(self, installation_id: int) -> Installation | None:
        with self._lock:
            return self._by_id.get(installation_id)

    def for_org(self, org_id: int) -> Installation | None:
        with self._lock:
            return next((found for found in self._by_id.values() if found.org_id == org_id), None)

    def remove(self, installation: Installation) -> None:
        with self._lock:
            self._by_id.pop(installation.id, None)

    def __iter__(self):
        with self._lock:
            return iter(sorted(self._by_id.values(), key=lambda installation: installation.id))

    def clear(self) -> None:
        with self._lock:
            self._by_id.clear()
