"""ChatProvider on the official Anthropic SDK (Messages API, streamed: message_start carries the input
tokens, content_block_delta the text, message_delta the output tokens). SDK retries off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic

from src.adapters.llm.errors import mapped
from src.ports.conversation import ChatRequest, Finished, ProviderError, StreamEvent, TextDelta, Usage


def _mapped(exc: Exception) -> ProviderError:
    return mapped("anthropic", exc, anthropic.APIStatusError, anthropic.APIError)


class AnthropicChat:
    name = "anthropic"

    def __init__(self, api_key: str, base_url: str | None = None, timeout: float = 60.0) -> None:
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        return {"model": request.model, "max_tokens": request.max_tokens, "system": request.system,
                "messages": [{"role": m.role, "content": m.content} for m in request.messages]}

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        try:
            stream = await self._client.messages.create(**self._arguments(request), stream=True)
        except Exception as exc:
            raise _mapped(exc) from exc
        prompt_tokens, completion_tokens, stop = None, None, None
        try:
            async for event in stream:
                if event.type == "message_start":
                    prompt_tokens = event.message.usage.input_tokens
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    yield TextDelta(event.delta.text)
                elif event.type == "message_delta":
                    completion_tokens = event.usage.output_tokens
                    stop = event.delta.stop_reason
        except Exception as exc:
            raise _mapped(exc) from exc
        finally:
            await stream.close()
        usage = Usage(prompt_tokens, completion_tokens) if prompt_tokens is not None and completion_tokens is not None \
            else None
        yield Finished(usage, stop)

    async def structured(self, request: ChatRequest, name: str, schema: dict[str, Any]) -> tuple[dict, Usage]:
        try:
            answer = await self._client.messages.create(
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
