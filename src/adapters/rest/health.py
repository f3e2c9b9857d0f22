"""GET /healthz: 200 when every component is healthy, 503 with the failing ones otherwise."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

from src.core.system.health import CheckHealth


def health_endpoint(check_health: Callable[[], CheckHealth]):
    async def healthz(request: Request) -> JSONResponse:
        report = await check_health().execute()
        body = {
            "status": "ok" if report.ok else "fail",
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in report.components],
        }
        return JSONResponse(body, status_code=200 if report.ok else 503)

    return healthz
