"""The Vercel AI SDK's chat stream (its UI message stream protocol, v1), for `useChat` frontends: a driving
adapter over the conversation use cases — the AI SDK's chat id is a Keel conversation id (a UUID; a new one
is created with it), answers are stored and metered as the GraphQL chat's, with channel `ai-sdk`.

- POST /ai-sdk/chat             {id, messages, workspaceId?}: the last user message asked; SSE parts
- GET  /ai-sdk/chat/{id}/stream  resume the chat's answer in progress from its start (204: none)
- POST /ai-sdk/chat/{id}/stop    stop it now (the text so far is kept)

Parts sent: start {messageId, messageMetadata}, start-step, text-start, text-delta…, text-end, one
source-document per cited passage, finish-step, finish {finishReason, messageMetadata}, then `[DONE]`; a
failure is an `error` part. Authenticated as the GraphQL API is: `Authorization: Bearer <access token>`
(with `workspaceId` in the body) or an API key (its own workspace)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from src.adapters.rest.admission import client_of
from src.adapters.rest.bodies import json_object, parse_uuid, prepend
from src.core.conversation.chat import Started
from src.core.conversation.live import Delta
from src.core.services import Services
from src.ports.conversation import Message, MessageStatus
from src.ports.edge import RateLimited
from src.ports.identity import Forbidden, Principal, Unauthenticated
from src.ports.shared import DomainError, InvalidInput, NotFound

CHANNEL = "ai-sdk"
STREAM_HEADERS = {"cache-control": "no-cache", "x-vercel-ai-ui-message-stream": "v1", "x-accel-buffering": "no"}
STATUS = {Unauthenticated: 401, Forbidden: 403, NotFound: 404, InvalidInput: 400, RateLimited: 429}


def ai_sdk_routes(services: Services) -> list[Route]:
    chat = AiSdkChat(services)
    return [Route("/ai-sdk/chat", chat.endpoint(chat.send, "chat"), methods=["POST"]),
            Route("/ai-sdk/chat/{chat_id}/stream", chat.endpoint(chat.resume, "messageStream"), methods=["GET"]),
            Route("/ai-sdk/chat/{chat_id}/stop", chat.endpoint(chat.stop, "stopAnswer"), methods=["POST"])]


def _part(part: dict[str, Any]) -> str:
    return f"data: {json.dumps(part, separators=(',', ':'))}\n\n"


class AiSdkChat:
    def __init__(self, services: Services) -> None:
        self._services = services

    def endpoint(self, handle: Callable[[Request, Principal], Awaitable[Response]], operation: str
                 ) -> Callable[[Request], Awaitable[Response]]:
        """The caller authenticated and admitted (rate limits) before `handle`; refusals as JSON errors."""

        async def run(request: Request) -> Response:
            try:
                principal = await self._principal(request)
                decision = await self._services.admission().caller(principal, client_of(request), [operation])
                response = await handle(request, principal)
            except DomainError as exc:
                status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 503)
                headers = exc.decision.header_fields() if isinstance(exc, RateLimited) else {}
                return JSONResponse({"error": {"code": exc.code, "message": str(exc)}}, status_code=status,
                                    headers=headers)
            response.headers.update(decision.header_fields())
            return response

        return run

    async def _principal(self, request: Request) -> Principal:
        if key := request.headers.get("x-api-key", "").strip():
            return await self._services.authenticate_api_key().execute(key)
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("send `Authorization: Bearer <access token>` or `X-Api-Key: <key>`")
        return await self._services.authenticate().execute(value.strip())

    async def _workspace(self, principal: Principal, given: Any) -> UUID:
        if principal.key_workspace_id is not None:
            return principal.key_workspace_id
        return parse_uuid(given, "workspaceId")

    async def send(self, request: Request, principal: Principal) -> Response:
        body = await json_object(request)
        chat_id = _chat_uuid(body.get("id"), "id")
        workspace_id = await self._workspace(principal, body.get("workspaceId")
                                             or request.query_params.get("workspaceId"))
        question = _last_user_text(body.get("messages"))
        events = self._services.send_message().execute(principal, workspace_id, chat_id, question, CHANNEL,
                                                       create=True)
        first = await anext(events)  # refusals (budget, access, input) are still HTTP errors here
        return StreamingResponse(_parts(first, events), media_type="text/event-stream", headers=STREAM_HEADERS)

    async def resume(self, request: Request, principal: Principal) -> Response:
        chat_id = _chat_uuid(request.path_params["chat_id"], "id")
        workspace_id = await self._workspace(principal, request.query_params.get("workspaceId"))
        answer = await self._answer_in_progress(principal, workspace_id, chat_id)
        if answer is None:
            return Response(status_code=204)
        events = self._services.follow_message().execute(principal, workspace_id, answer.id, 0)
        return StreamingResponse(_parts(Started(chat_id, answer), events), media_type="text/event-stream",
                                 headers=STREAM_HEADERS)

    async def stop(self, request: Request, principal: Principal) -> Response:
        chat_id = _chat_uuid(request.path_params["chat_id"], "id")
        workspace_id = await self._workspace(principal, request.query_params.get("workspaceId"))
        answer = await self._answer_in_progress(principal, workspace_id, chat_id)
        if answer is None:
            return JSONResponse({"stopped": None})
        stopped = await self._services.stop_answer().execute(principal, workspace_id, answer.id)
        return JSONResponse({"stopped": str(stopped.id), "status": stopped.status.value})

    async def _answer_in_progress(self, principal: Principal, workspace_id: UUID, chat_id: UUID) -> Message | None:
        found = await self._services.get_conversation().execute(principal, workspace_id, chat_id, 2)
        return next((m for m in reversed(found.messages) if m.status is MessageStatus.STREAMING), None)


async def _parts(first: Any, events: AsyncIterator[Any]) -> AsyncIterator[str]:
    text_id = None
    try:
        async for event in prepend(first, events):
            if isinstance(event, Started):
                text_id = f"text-{event.message.id}"
                yield _part({"type": "start", "messageId": str(event.message.id),
                             "messageMetadata": {"conversationId": str(event.conversation_id)}})
                yield _part({"type": "start-step"})
                yield _part({"type": "text-start", "id": text_id})
            elif isinstance(event, Delta) and event.text:
                yield _part({"type": "text-delta", "id": text_id, "delta": event.text})
            elif isinstance(event, Message):
                yield _part({"type": "text-end", "id": text_id})
                for source in event.sources:
                    yield _part({"type": "source-document", "sourceId": str(source.chunk_id),
                                 "mediaType": "text/plain", "title": source.document_title})
                if event.status is MessageStatus.FAILED:
                    yield _part({"type": "error", "errorText": event.error or "the answer failed"})
                yield _part({"type": "finish-step"})
                yield _part({"type": "finish", "finishReason": _finish_reason(event), "messageMetadata": {
                    "conversationId": str(event.conversation_id), "model": event.model,
                    "status": event.status.value, "promptTokens": event.prompt_tokens,
                    "completionTokens": event.completion_tokens, "costUsd": event.cost_usd}})
    except DomainError as exc:
        yield _part({"type": "error", "errorText": str(exc)})
    yield "data: [DONE]\n\n"


def _finish_reason(message: Message) -> str:
    return {MessageStatus.COMPLETE: "stop", MessageStatus.FAILED: "error"}.get(message.status, "other")


def _last_user_text(messages: Any) -> str:
    """The last user message's text parts (UIMessage: {id, role, parts: [{type: "text", text}]})."""
    if not isinstance(messages, list):
        raise InvalidInput("messages is a list of UI messages", field="messages")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            parts = message.get("parts")
            if isinstance(parts, list):
                return "".join(part.get("text", "") for part in parts
                               if isinstance(part, dict) and part.get("type") == "text"
                               and isinstance(part.get("text"), str))
    raise InvalidInput("messages need a user message with text", field="messages")


def _chat_uuid(raw: Any, field: str) -> UUID:
    return parse_uuid(raw, field, " (use the Keel conversation id as the chat id)")
