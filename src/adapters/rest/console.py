"""The reference console: static files (no build step, nothing fetched at run time) at `/` and `/console/…`,
rate-limited per address like every route, under a content security policy that allows only this origin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from src.adapters.rest.admission import admitted
from src.core.edge.rate_limits import Admission

FILES = Path(__file__).with_name("console")
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".md": "text/plain"}
POLICY = ("default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; object-src 'none'; "
          "base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}


async def _page(request: Request) -> Response:
    return FileResponse(FILES / "index.html", headers=HEADERS)


async def _asset(request: Request) -> Response:
    wanted = (FILES / request.path_params["path"]).resolve()
    if not wanted.is_relative_to(FILES.resolve()) or not wanted.is_file() or wanted.suffix not in TYPES:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(wanted, media_type=TYPES[wanted.suffix], headers=HEADERS)


def console_routes(admission: Callable[[], Admission]) -> list[Route]:
    return [Route("/", admitted(_page, admission, "console")),
            Route("/oauth/{provider:str}/callback", admitted(_page, admission, "console")),  # back from a provider
            Route("/console/{path:path}", admitted(_asset, admission, "console"))]
