"""Avatars: the simulator serves a small generated image per user, so that pages show faces with no
internet. GitHub Enterprise Server serves avatars at the same path, HOST/avatars/u/ID, and github.com
at https://avatars.githubusercontent.com/u/ID."""

import hashlib
import re

from github_simulator.messages import Response

PREFIX = "/avatars/"
_PATH = re.compile(r"/avatars/u/(\d{1,12})")
_GRID = 5


def avatar_url(web_url: str, database_id: int) -> str:
    return f"{web_url}{PREFIX}u/{database_id}?v=4"


def handle(request) -> Response:
    """Return the identicon of the user the path names: the same image for the same id, every time."""
    match = _PATH.fullmatch(request.path)
    if match is None or request.method != "GET":
        return Response(404, b"Not Found", [("Content-Type", "text/plain; charset=utf-8")])
    body = identicon(int(match.group(1)))
    etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
    # As GitHub's avatar host does: cacheable, so that a page of 50 members asks once per face.
    headers = [("Cache-Control", "public, max-age=86400"), ("ETag", etag)]
    if request.headers.get("if-none-match") == etag:
        return Response(304, b"", headers)
    return Response(200, body, [("Content-Type", "image/svg+xml"), *headers])


def identicon(database_id: int) -> bytes:
    """Return an SVG of GitHub's default avatar kind: a 5×5 grid, mirrored left to right, in one
    colour drawn from the id. A few hundred bytes, whatever size the page shows it at."""
    digest = hashlib.blake2b(str(database_id).encode(), digest_size=20).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    half = (_GRID + 1) // 2
    cells = set()
    for row in range(_GRID):
        for column in range(half):
            if digest[2 + row * half + column] % 2:
                cells |= {(column, row), (_GRID - 1 - column, row)}
    squares = "".join(f"M{x} {y}h1v1h-1z" for x, y in sorted(cells))
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="-0.5 -0.5 6 6" width="420" height="420" '
        'shape-rendering="crispEdges">'
        '<rect x="-0.5" y="-0.5" width="6" height="6" fill="#f0f0f0"/>'
        f'<path fill="hsl({hue},55%,55%)" d="{squares}"/></svg>'
    ).encode()
