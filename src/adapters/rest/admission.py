"""Rate limits on REST routes: each request spends its route's cost before the endpoint runs; refused with
429, Retry-After and the RateLimit fields, which every answer carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from src.core.edge.rate_limits import Admission
from src.ports.edge import RateLimited
from src.ports.identity import ClientInfo

Endpoint = Callable[[Request], Awaitable[Response]]


def client_of(request: Request) -> ClientInfo:
    return ClientInfo(ip=request.client.host if request.client else "",
                      user_agent=request.headers.get("user-agent", "")[:300])


def admitted(endpoint: Endpoint, admission: Callable[[], Admission], operation: str, *,
             per_address: bool = True) -> Endpoint:
    """`per_address=False`: only this process's quota (for senders that come in bursts from few addresses,
    such as Stripe's webhooks, whose signature is checked before any work)."""

    async def handle(request: Request) -> Response:
        limits = admission()
        try:
            if per_address:
                decision = await limits.caller(None, client_of(request), [operation])
            else:
                decision = await limits.process([operation])
        except RateLimited as exc:
            return PlainTextResponse(str(exc), status_code=429, headers=exc.decision.header_fields())
        response = await endpoint(request)
        response.headers.update(decision.header_fields())
        return response

    return handle
