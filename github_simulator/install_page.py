"""The App's install page, at github.com's path (/apps/{slug}/installations/new) and at Enterprise
Server's (/github-apps/{slug}/installations/new): one Install button per
organization the signed-in user (octocat, as on the OAuth pages) belongs to; installing sends the user
to the App's Setup URL with installation_id, setup_action and the state the install link carried
(https://docs.github.com/apps/creating-github-apps/registering-a-github-app/about-the-setup-url)."""

import re
from html import escape

from github_simulator import webhooks
from github_simulator.messages import Response, redirect
from github_simulator.oauth import page, with_query
from github_simulator.organizations import VIEWER


def handle(simulator, request) -> Response:
    app = simulator.app
    match = re.fullmatch(r"/(apps|github-apps)/([^/]+)/installations/new", request.path.rstrip("/"))
    if match is None or match.group(2) != app.slug:
        return page(404, "Page not found", "<p>This is not the web page you are looking for.</p>")
    if request.method == "POST":
        return _install(simulator, request.form())
    return _choice(simulator, request.query.get("state"), folder=match.group(1))


def _choice(simulator, state: str | None, *, folder: str) -> Response:
    app = simulator.app
    action = f"/{folder}/{escape(app.slug)}/installations/new"
    state_field = f'<input type="hidden" name="state" value="{escape(state)}">' if state is not None else ""
    forms = "".join(
        f'<li><form method="post" action="{action}">{state_field}'
        f'<input type="hidden" name="target_id" value="{org.id}">'
        f'<button type="submit">Install on {escape(org.login)}</button></form></li>'
        for org in simulator.orgs
        if org.viewer_is_member
    )
    body = f"""<h1>Install {escape(app.name)}</h1>
<p>Signed in as {VIEWER.login}. Where do you want to install {escape(app.name)}?</p>
<ul>{forms}</ul>"""
    return page(200, f"Install {app.name}", body)


def _install(simulator, form) -> Response:
    org = simulator.orgs.find_by_id(int(form["target_id"])) if form.get("target_id", "").isdigit() else None
    if org is None or not org.viewer_is_member:
        return page(404, "Page not found", "<p>You cannot install this App on that account.</p>")
    installation, created = simulator.installations.install(org.id)
    if created:
        simulator.webhooks.send(
            "installation", installation, webhooks.installation_event(simulator, installation, "created")
        )
    setup_url = simulator.app.setup_url
    if not setup_url:
        return page(200, "Installed", f"<p>{escape(simulator.app.name)} is installed on {escape(org.login)}.</p>")
    parameters = {
        "installation_id": installation.id,
        # Installing again on the same account is GitHub's "Configure", which answers update.
        "setup_action": "install" if created else "update",
        "state": form.get("state"),
    }
    return redirect(with_query(setup_url, parameters))
