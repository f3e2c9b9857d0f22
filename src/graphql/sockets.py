"""graphql-transport-ws, strict about what a client sends and how much it holds:
- a malformed message closes the socket with 4400 and a reason (never a dropped connection); an operation
  that does not parse gets an `error` message;
- `connection_init` spends a unit of the caller's rate-limit quota, and a caller holds at most
  `ws_max_per_caller` sockets on this process (4429 past it)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler

from src.ports.edge import RateLimited
from src.ports.identity import Principal, Unauthenticated


def _malformed(message: Any) -> str | None:
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "a message must be a JSON object with a string `type`"
    if message["type"] == "connection_init" and not isinstance(message.get("payload") or {}, dict):
        return "`payload` of connection_init must be an object"
    if message["type"] != "subscribe":
        return None
    payload = message.get("payload")
    if not isinstance(message.get("id"), str) or not message["id"] or len(message["id"]) > 100:
        return "a subscribe message needs a string `id` (at most 100 characters)"
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "a subscribe message needs a `payload` object with a string `query`"
    if not isinstance(payload.get("variables") or {}, dict):
        return "`payload.variables` must be an object"
    if not isinstance(payload.get("operationName") or "", str):
        return "`payload.operationName` must be a string"
    return None


def caller_key(principal: Principal | None, ip: str) -> str:
    if principal is None:
        return f"ip:{ip}"
    return f"key:{principal.api_key_id}" if principal.api_key_id else f"user:{principal.user_id}"


class LiveSockets:
    """The sockets this process holds, by caller."""

    def __init__(self, max_per_caller: int) -> None:
        self.max_per_caller = max_per_caller
        self.by_caller: dict[str, set[KeelTransportWS]] = defaultdict(set)

    def admit(self, caller: str, socket: KeelTransportWS) -> bool:
        held = self.by_caller[caller]
        if len(held) >= self.max_per_caller:
            if not held:
                del self.by_caller[caller]
            return False
        held.add(socket)
        return True

    def forget(self, caller: str, socket: KeelTransportWS) -> None:
        held = self.by_caller.get(caller)
        if held is not None:
            held.discard(socket)
            if not held:
                del self.by_caller[caller]


class KeelTransportWS(BaseGraphQLTransportWSHandler):
    caller: str | None = None

    async def handle_message(self, message: Any) -> None:
        problem = _malformed(message)
        if problem:
            await self.handle_invalid_message(problem)
            return
        if message["type"] == "connection_init" and not self.connection_init_received:
            refusal = await self._admit(message.get("payload") or {})
            if refusal:
                await self.websocket.close(code=refusal[0], reason=refusal[1])
                return
        await super().handle_message(message)

    async def _admit(self, payload: dict) -> tuple[int, str] | None:
        context = self.context
        context.connection_params = payload
        try:
            principal = await context.principal()
        except Unauthenticated:
            principal = None  # its operations are refused one by one, as over HTTP
        try:
            await context.services.admission().caller(principal, context.client, ["connect"])
        except RateLimited as exc:
            return 4429, f"too many requests; retry in {exc.retry_after_seconds} s"
        caller = caller_key(principal, context.client.ip)
        if not self.view.sockets.admit(caller, self):
            return 4429, f"at most {self.view.sockets.max_per_caller} open websockets per caller"
        self.caller = caller
        return None

    async def shutdown(self) -> None:
        if self.caller is not None:
            self.view.sockets.forget(self.caller, self)
        await super().shutdown()

    @staticmethod
    def _get_pre_execution_close_reason(error) -> str | None:
        return None  # a syntax or validation error is that operation's `error`, not the socket's end
