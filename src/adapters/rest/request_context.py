"""Every HTTP request and websocket gets a request id (the client's X-Request-ID when it is a plain token, else
a new one), bound to the context its log lines and jobs carry and sent back in the X-Request-ID header."""

from __future__ import annotations

import re
import uuid

from src.ports.context import context_of

_PLAIN = re.compile(r"[A-Za-z0-9._-]{8,64}")  # anything else could forge or flood log lines


class RequestContext:
    """Pure ASGI middleware (it must not buffer streamed or websocket responses)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _PLAIN.fullmatch(sent) else uuid.uuid4().hex

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", request_id.encode())]}
            await send(message)

        with context_of({"request_id": request_id}):  # nothing of an earlier request on this task carries over
            await self.app(scope, receive, send_with_id)
