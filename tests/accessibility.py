"""axe-core (Deque's accessibility engine, vendored from npm under tests/vendor/axe-core) run in a
test's browser page: what a keyboard or screen reader user would stumble on."""

from pathlib import Path

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
# axe's own scale: minor, moderate, serious, critical. The two worst are what the pages must not have.
BLOCKING = ("serious", "critical")


def serious_violations(page) -> list[str]:
    """The serious and critical violations axe finds on the page as it is now, one line each."""
    # Evaluated through the DevTools protocol rather than added as a <script>: the pages' Content
    # Security Policy refuses inline scripts, as it should.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(" ".join(node["target"]) for node in violation["nodes"])
        for violation in results["violations"]
        if violation["impact"] in BLOCKING
    ]
