"""graphql-transport-ws, strict about what a client sends and how much it holds:
- a malformed message closes the socket with 4400 and a reason (never a dropped connection); an operation
  that does not parse gets an `error` message;
- `connection_init` spends a unit of the caller's rate-limit quota, and a caller holds at most
  `ws_max_per_caller` sockets on this process (4429 past it);
- every `subscribe` authenticates the caller again, and open sockets of ended sessions and revoked keys
  are closed within seconds (LiveSockets)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler

from src.ports.edge import RateLimited
from src.ports.identity import Principal, Unauthenticated
from src.ports.shared import DomainError

log = logging.getLogger(__name__)


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
    """The sockets this process holds, by caller; every few seconds those whose session or API key ended
    anywhere (signed out, revoked: every process sees it in the database) are closed, 4401 for a session,
    4403 for a key."""

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

    def count(self) -> int:
        return sum(len(sockets) for sockets in self.by_caller.values())

    def forget(self, caller: str, socket: KeelTransportWS) -> None:
        held = self.by_caller.get(caller)
        if held is not None:
            held.discard(socket)
            if not held:
                del self.by_caller[caller]

    async def close_ended(self, find_ended: Callable[[], Any]) -> int:
        """One sweep: returns how many sockets it closed."""
        held = {socket: principal for sockets in self.by_caller.values() for socket in sockets
                if (principal := socket.context.known_principal) is not None}
        keys = {principal.api_key_id for principal in held.values() if principal.api_key_id}
        sessions = {principal.session_id for principal in held.values() if principal.session_id}
        if not keys and not sessions:
            return 0
        ended = await find_ended().execute(sessions, keys)
        closed = 0
        for socket, principal in held.items():
            if principal.api_key_id in ended:
                await socket.close(4403, "this API key was revoked")
            elif principal.session_id in ended:
                await socket.close(4401, "this session has ended; sign in again")
            else:
                continue
            closed += 1
        return closed

    async def watch(self, find_ended: Callable[[], Any], every_seconds: float) -> None:
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.close_ended(find_ended)
            except Exception:  # the database away, say: the next sweep tries again
                log.warning("could not check the callers of open websockets", exc_info=True)


class KeelTransportWS(BaseGraphQLTransportWSHandler):
    caller: str | None = None

    async def handle_message(self, message: Any) -> None:
        problem = _malformed(message)
        if problem:
            await self.handle_invalid_message(problem)
            return
        refusal = None
        if message["type"] == "connection_init" and not self.connection_init_received:
            refusal = await self._admit(message.get("payload") or {})
        elif message["type"] == "subscribe" and self.connection_acknowledged:
            refusal = await self._recheck()
        if refusal:
            await self.close(*refusal)
            return
        await super().handle_message(message)

    async def _recheck(self) -> tuple[int, str] | None:
        """Every subscribe authenticates again: an expired token, an ended session or a revoked key ends the
        socket (the client reconnects with fresh credentials)."""
        if self.context.known_principal is None:
            return None  # anonymous: each operation is refused on its own
        self.context.forget_caller()
        try:
            await self.context.principal()
        except Unauthenticated as exc:
            return 4401, str(exc)[:120]
        except DomainError:
            return None  # could not check now (the database is busy): the operation answers UNAVAILABLE
        return None

    async def close(self, code: int, reason: str) -> None:
        await self.websocket.close(code=code, reason=reason)

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
