"""graphql-transport-ws, strict about what a client sends: a malformed message closes the socket with 4400
and a reason (never a dropped connection), and an operation that does not parse gets an `error` message."""

from __future__ import annotations

from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler


def _malformed(message: Any) -> str | None:
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "a message must be a JSON object with a string `type`"
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


class KeelTransportWS(BaseGraphQLTransportWSHandler):
    async def handle_message(self, message: Any) -> None:
        problem = _malformed(message)
        if problem:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    @staticmethod
    def _get_pre_execution_close_reason(error) -> str | None:
        return None  # a syntax or validation error is that operation's `error`, not the socket's end
