"""The deployment guide names every environment variable the settings read, so that it cannot fall
behind config/settings.py unnoticed."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# env("NAME"), env_bool("NAME"), env_list("NAME"), os.environ.get("NAME"), os.environ.setdefault("NAME"),
# os.environ["NAME"]
READ = re.compile(r"""(?:\benv(?:_bool|_list)?\(|os\.environ(?:\.get\(|\.setdefault\(|\[))\s*["']([A-Za-z_]\w*)["']""")


def variables_read_by_settings() -> set[str]:
    return set(READ.findall((ROOT / "config" / "settings.py").read_text()))


def test_it_finds_the_variables_the_settings_read():
    # A pattern that stopped matching would make the next test pass on nothing.
    names = variables_read_by_settings()
    assert {"SECRET_KEY", "TOKEN_ENCRYPTION_KEYS", "EVENTS_REDIS_URL", "DEBUG", "dramatiq_worker_timeout"} <= names
    assert len(names) > 30


def test_it_documents_every_environment_variable_the_settings_read():
    guide = (ROOT / "docs" / "deploy.md").read_text()
    missing = sorted(name for name in variables_read_by_settings() if f"`{name}`" not in guide)
    assert missing == []
