"""The OpenAI-compatible API under /v1, for the clients that already speak it (OpenAI SDKs, LibreChat, Open
WebUI, agent frameworks): chat completions (streamed as OpenAI streams them, or whole), the models the key's
workspace may use, embeddings. A driving adapter over the same use cases as GraphQL: authorization, rate
limits, budgets, fallbacks and accounting are theirs. Authenticated by a Keel API key as a bearer token;
failures in OpenAI's error envelope with its HTTP statuses, so the SDKs' own retry logic behaves.

Model `keel-rag` answers from the workspace's documents as the GraphQL chat does (a stored conversation; the
sources and ids ride in a `keel` field, an extension OpenAI clients ignore)."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from src.adapters.rest.admission import client_of
from src.adapters.rest.bodies import json_object, parse_uuid, prepend
from src.core.conversation.chat import Started
from src.core.conversation.completions import Completed, CompletionRequest
from src.core.conversation.live import Delta
from src.core.services import Services
from src.ports.billing import QuotaExceeded
from src.ports.conversation import Message, MessageStatus
from src.ports.edge import RateLimited
from src.ports.identity import Forbidden, Principal, Unauthenticated
from src.ports.knowledge import EmbeddingUnavailable
from src.ports.models import ChatMessage, ProviderUnavailable, Usage
from src.ports.shared import DomainError, InvalidInput, NotFound, StorageUnavailable

RAG_MODEL = "keel-rag"
CHANNEL = "openai"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, kind: str, code: str | None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.code, self.param, self.headers = status, kind, code, param, headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def openai_error(exc: DomainError) -> OpenAIError:
    """Keel's typed errors as OpenAI's: the status an OpenAI client expects for each."""
    if isinstance(exc, RateLimited):
        return OpenAIError(429, str(exc), "requests", "rate_limit_exceeded",
                           headers=exc.decision.header_fields())
    if isinstance(exc, QuotaExceeded):
        return OpenAIError(429, str(exc), "insufficient_quota", "insufficient_quota", param=exc.limit)
    if isinstance(exc, Unauthenticated):
        return OpenAIError(401, str(exc), "invalid_request_error", "invalid_api_key")
    if isinstance(exc, Forbidden):
        return OpenAIError(403, str(exc), "invalid_request_error", "permission_denied")
    if isinstance(exc, NotFound):
        return OpenAIError(404, str(exc), "invalid_request_error", "model_not_found" if "model" in str(exc)
                           else "not_found")
    if isinstance(exc, InvalidInput):
        return OpenAIError(400, str(exc), "invalid_request_error", "invalid_value", param=exc.field)
    if isinstance(exc, ProviderUnavailable | StorageUnavailable | EmbeddingUnavailable):
        return OpenAIError(503, str(exc), "server_error", "service_unavailable")
    return OpenAIError(400, str(exc), "invalid_request_error", exc.code)


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    workspace_id: UUID
    rate_headers: dict[str, str]


def openai_routes(services: Services) -> list[Route]:
    api = OpenAIApi(services)
    return [Route("/v1/models", api.endpoint(api.models, "models"), methods=["GET"]),
            Route("/v1/chat/completions", api.endpoint(api.chat_completions, "chat"), methods=["POST"]),
            Route("/v1/embeddings", api.endpoint(api.embeddings, "search"), methods=["POST"])]


class OpenAIApi:
    def __init__(self, services: Services) -> None:
        self._services = services

    def endpoint(self, handle: Callable[[Request, Caller], Awaitable[Response]], operation: str
                 ) -> Callable[[Request], Awaitable[Response]]:
        """Authenticated by an API key, then the caller's and the workspace's rate limits, then `handle`;
        every Keel error answered in OpenAI's envelope."""

        async def run(request: Request) -> Response:
            try:
                caller = await self._caller(request, operation)
                response = await handle(request, caller)
            except DomainError as exc:
                return openai_error(exc).response()
            except OpenAIError as exc:
                return exc.response()
            response.headers.update(caller.rate_headers)
            return response

        return run

    async def _caller(self, request: Request, operation: str) -> Caller:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise Unauthenticated("send a Keel API key as `Authorization: Bearer <key>`")
        principal = await self._services.authenticate_api_key().execute(header[7:].strip())
        if principal.key_workspace_id is None:
            raise Unauthenticated("send a Keel API key as `Authorization: Bearer <key>`")
        limits = self._services.admission()
        decision = await limits.caller(principal, client_of(request), [operation])
        await limits.workspace(principal.key_workspace_id, operation)
        return Caller(principal, principal.key_workspace_id, decision.header_fields())

    async def models(self, request: Request, caller: Caller) -> Response:
        names = await self._services.complete_chat().models(caller.principal, caller.workspace_id)
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "keel"} for name in [*names, RAG_MODEL]]})

    async def embeddings(self, request: Request, caller: Caller) -> Response:
        body = await json_object(request)
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            raise InvalidInput("input is a string or a list of strings (token arrays are not accepted)",
                               field="input")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):  # the SDKs ask for base64 (little-endian float32) by default
            raise InvalidInput("encoding_format is float or base64", field="encoding_format")
        model = body.get("model")
        embedded = await self._services.embed_texts().execute(caller.principal, caller.workspace_id, texts,
                                                              model if isinstance(model, str) else None)
        return JSONResponse({"object": "list", "model": embedded.model, "data": [
            {"object": "embedding", "index": index,
             "embedding": vector if encoding == "float" else base64.b64encode(struct.pack(f"<{len(vector)}f",
                                                                                          *vector)).decode()}
            for index, vector in enumerate(embedded.vectors)],
            "usage": {"prompt_tokens": embedded.tokens, "total_tokens": embedded.tokens}})

    async def chat_completions(self, request: Request, caller: Caller) -> Response:
        body = await json_object(request)
        completion = _completion_request(body)
        stream = body.get("stream") is True
        usage_chunk = stream and bool((body.get("stream_options") or {}).get("include_usage"))
        if completion.model == RAG_MODEL:
            events = self._rag(caller, completion, body.get("keel") or {})
        else:
            events = self._services.complete_chat().execute(caller.principal, caller.workspace_id, completion,
                                                            CHANNEL)
        first = await anext(events)  # a refusal (model, budget, input) is still an HTTP error here
        answer_id = f"chatcmpl-{uuid.uuid4().hex}"
        if not stream:
            return JSONResponse(await _whole(answer_id, first, events))
        return StreamingResponse(_chunks(answer_id, completion.model, first, events, usage_chunk),
                                 media_type="text/event-stream", headers=SSE_HEADERS)

    async def _rag(self, caller: Caller, completion: CompletionRequest,
                   options: dict[str, Any]) -> AsyncIterator[str | Completed | dict[str, Any]]:
        """keel-rag: the last user message asked in a conversation (a new one, or `keel.conversation_id`)."""
        question = next(m.content for m in reversed(completion.messages) if m.role == "user")
        conversation = options.get("conversation_id")
        events = self._services.send_message().execute(
            caller.principal, caller.workspace_id, parse_uuid(conversation, "keel.conversation_id") if conversation
            else None, question, CHANNEL)
        final, started = None, None
        try:
            async for event in events:
                if isinstance(event, Started):
                    started = event
                elif isinstance(event, Delta):
                    yield event.text
                elif isinstance(event, Message):
                    final = event
        finally:
            if final is None and started is not None:  # the client went away: no one will resume it
                await self._services.stop_answer().execute(caller.principal, caller.workspace_id,
                                                           started.message.id)
        if final is None or final.status is MessageStatus.FAILED:
            raise ProviderUnavailable(final.error if final and final.error else "the answer failed")
        yield _rag_extension(final)
        yield Completed(final.id, final.model or RAG_MODEL, _usage(final), final.cost_usd, "stop")


def _completion_request(body: dict[str, Any]) -> CompletionRequest:
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise InvalidInput("model is required", field="model")
    if not isinstance(messages, list):
        raise InvalidInput("messages is a list of {role, content}", field="messages")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool)):
        raise InvalidInput("max_tokens is an integer", field="max_tokens")
    return CompletionRequest(model, tuple(_message(item) for item in messages), max_tokens)


def _message(item: Any) -> ChatMessage:
    if not isinstance(item, dict) or not isinstance(item.get("role"), str):
        raise InvalidInput("each message is {role, content}", field="messages")
    content = item.get("content")
    if isinstance(content, list):  # content parts: text only
        if not all(isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
                   for part in content):
            raise InvalidInput("only text content parts are accepted", field="messages")
        content = "".join(part["text"] for part in content)
    if not isinstance(content, str):
        raise InvalidInput("a message's content is text", field="messages")
    return ChatMessage(item["role"], content)


def _usage(message: Message) -> Usage:
    return Usage(message.prompt_tokens, message.completion_tokens)


def _rag_extension(message: Message) -> dict[str, Any]:
    return {"conversation_id": str(message.conversation_id), "message_id": str(message.id), "sources": [
        {"document_id": str(s.document_id), "chunk_id": str(s.chunk_id), "title": s.document_title,
         "score": s.score} for s in message.sources]}


def _usage_body(done: Completed) -> dict[str, int]:
    return {"prompt_tokens": done.usage.prompt_tokens, "completion_tokens": done.usage.completion_tokens,
            "total_tokens": done.usage.prompt_tokens + done.usage.completion_tokens}


async def _whole(answer_id: str, first: Any, events: AsyncIterator[Any]) -> dict[str, Any]:
    text, extension, done = [], None, None
    for event in [first] + [event async for event in events]:
        if isinstance(event, str):
            text.append(event)
        elif isinstance(event, dict):
            extension = event
        else:
            done = event
    assert done is not None
    body = {"id": answer_id, "object": "chat.completion", "created": int(time.time()),
            "model": done.model, "choices": [{"index": 0, "finish_reason": done.finish_reason, "message": {
                "role": "assistant", "content": "".join(text), "refusal": None}}],
            "usage": _usage_body(done)}
    if extension is not None:
        body["keel"] = extension
    return body


async def _chunks(answer_id: str, model: str, first: Any, events: AsyncIterator[Any],
                  usage_chunk: bool) -> AsyncIterator[str]:
    """OpenAI's chunks, one id throughout: the role first, then the text, then the finish reason (and the
    usage when asked); `data: [DONE]` ends it. A failure after the first chunk is an `error` event (the
    status is already sent)."""
    head: dict[str, Any] = {"id": answer_id, "object": "chat.completion.chunk", "created": int(time.time())}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {**head, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra}
        return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"

    opened, extension = False, None
    try:
        async for event in prepend(first, events):
            if isinstance(event, str):
                if not opened:
                    yield chunk({"role": "assistant", "content": ""})
                    opened = True
                yield chunk({"content": event})
            elif isinstance(event, dict):
                extension = event
            elif isinstance(event, Completed):
                model = event.model  # the model that answered (a fallback's, maybe)
                if not opened:
                    yield chunk({"role": "assistant", "content": ""})
                yield chunk({}, event.finish_reason, **({"keel": extension} if extension else {}))
                if usage_chunk:
                    body = {**head, "model": model, "choices": [], "usage": _usage_body(event)}
                    yield f"data: {json.dumps(body, separators=(',', ':'))}\n\n"
    except DomainError as exc:
        yield f"data: {json.dumps(openai_error(exc).body())}\n\n"
    yield "data: [DONE]\n\n"
