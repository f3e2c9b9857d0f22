"""ChatProvider on the official Anthropic SDK (Messages API, streamed: message_start carries the input
tokens, content_block_delta the text, message_delta the output tokens). SDK retries off.

The stream is read through the SDK's streaming response and its SSE events parsed as plain JSON, which
costs a fraction of the SDK's per-event model construction; HTTP goes through the SDK's aiohttp transport
(cheaper per streamed chunk than its default httpx one)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
from httpx_sse import EventSource

from src.adapters.llm.errors import mapped, provider_error
from src.ports.models import ChatRequest, Finished, ProviderError, StreamEvent, TextDelta, Usage

_READ_EVENTS = {"content_block_delta", "message_start", "message_delta", "error"}


def _mapped(exc: Exception) -> ProviderError:
    return mapped("anthropic", exc, anthropic.APIStatusError, anthropic.APIError)


class AnthropicChat:
    name = "anthropic"

    def __init__(self, api_key: str, base_url: str | None = None, timeout: float = 60.0) -> None:
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout,
                                                http_client=anthropic.DefaultAioHttpClient(timeout=timeout))
        # resolved now: the SDK imports its resources on first use, which the first answer would wait for
        self._messages = self._client.messages

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        return {"model": request.model, "max_tokens": request.max_tokens, "system": request.system,
                "messages": [{"role": m.role, "content": m.content} for m in request.messages]}

    async def aclose(self) -> None:
        await self._client.close()

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        prompt_tokens, completion_tokens, stop = None, None, None
        try:
            # leaving the block closes the HTTP response: upstream generation stops
            async with self._messages.with_streaming_response.create(
                    **self._arguments(request), stream=True) as response:
                async for event in EventSource(response.http_response).aiter_sse():
                    if event.event not in _READ_EVENTS:
                        continue
                    data = json.loads(event.data)
                    if event.event == "content_block_delta" and data["delta"].get("type") == "text_delta":
                        yield TextDelta(data["delta"]["text"])
                    elif event.event == "message_start":
                        prompt_tokens = data["message"]["usage"]["input_tokens"]
                    elif event.event == "message_delta":
                        completion_tokens = data["usage"]["output_tokens"]
                        stop = data["delta"].get("stop_reason")
                    elif event.event == "error":  # e.g. overloaded while answering
                        error = data.get("error") or {}
                        raise provider_error("anthropic", None, f"{error.get('type')}: {error.get('message')}")
        except ProviderError:
            raise
        except Exception as exc:
            raise _mapped(exc) from exc
        usage = Usage(prompt_tokens, completion_tokens) if prompt_tokens is not None and completion_tokens is not None \
            else None
        yield Finished(usage, stop)

    async def structured(self, request: ChatRequest, name: str, schema: dict[str, Any]) -> tuple[dict, Usage]:
        try:
            answer = await self._messages.create(
                **self._arguments(request), tools=[{"name": name, "description": f"Return the {name}.",
                                                   "input_schema": schema}],
                tool_choice={"type": "tool", "name": name})
        except Exception as exc:
            raise _mapped(exc) from exc
        usage = Usage(answer.usage.input_tokens, answer.usage.output_tokens)
        for block in answer.content:
            if block.type == "tool_use" and block.name == name:
                return dict(block.input), usage
        raise ProviderError("anthropic: no structured answer in the response", retryable=False)
