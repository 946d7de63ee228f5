"""``/results/<path>``: download a file of the results folder, and nothing outside it.

The page links a case's outputs (summary, label maps) through this route. A path is served only when, after
resolving ``..`` and symbolic links, it is a regular file inside the results folder; anything else is refused with
403 (outside, or hidden such as ``.records``) or 404 (absent). aiohttp's own static routes serve the page's scripts.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

ROUTE = "/results/{tail:.*}"


def resolve_request(root: Path, tail: str) -> tuple[int, Path | None]:
    """(HTTP status, file) for a request of ``tail`` under ``root``: 200 and the file, or 403/404 and None."""
    relative = unquote(tail)
    if "\x00" in relative or relative.startswith(("/", "\\")):
        return 403, None
    root = root.resolve()
    candidate = (root / relative).resolve()
    try:
        inside = candidate.relative_to(root)
    except ValueError:
        return 403, None
    if any(part.startswith(".") for part in inside.parts):
        return 403, None
    if not candidate.is_file():
        return 404, None
    return 200, candidate


def make_handler(root: Path):
    """An aiohttp handler serving ``root``'s files per :func:`resolve_request`."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.StreamResponse:
        status, path = resolve_request(root, request.match_info.get("tail", ""))
        if path is None:
            return web.Response(status=status, text="refused: outside the results folder\n" if status == 403 else "")
        return web.FileResponse(path)

    return handler


def add_results_route(app, root: Path) -> None:
    """Register the route on an aiohttp application (trame's ``on_server_bind`` gives its wslink server)."""
    app.router.add_get(ROUTE, make_handler(root))
