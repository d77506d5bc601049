"""The programs the tests drive that pip does not install, found on this machine rather than at
one distribution's paths: a missing one fails with the package that brings it."""

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class MissingProgram(Exception):
    pass


def chromium():
    """CHROMIUM if set, else the first Chromium on the PATH. Playwright is given its path: it
    cannot download a browser of its own here."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise MissingProgram(
        f"No Chromium on the PATH (looked for {', '.join(CHROMIUM_NAMES)}). Install it (Debian: "
        "apt-get install chromium) or set CHROMIUM to its path."
    )


def postgres_program(name):
    """A PostgreSQL server program (initdb, pg_ctl): in `pg_config --bindir`, where Debian keeps them
    off the PATH, else on the PATH."""
    bindir = None
    if shutil.which("pg_config"):
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
    if bindir and (Path(bindir) / name).is_file():
        return str(Path(bindir) / name)
    found = shutil.which(name)
    if found:
        return found
    raise MissingProgram(
        f"No PostgreSQL {name} (neither in `pg_config --bindir` nor on the PATH). Install PostgreSQL's "
        "server (Debian: apt-get install postgresql)."
    )
