"""A local server speaking Anthropic's Messages API (streaming SSE with named events, error bodies,
429 + Retry-After) so the real `anthropic` SDK talks to it. Behaviour comes from a ChatScript."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tests.fakes.chat_script import ChatScript, CutConnection, prompt_tokens
from tests.fakes.oauth_provider import ServedApp
from tests.net import free_port

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error",
               500: "api_error", 529: "overloaded_error"}


def error_body(status: int, message: str) -> dict:
    return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@dataclass
class FakeAnthropic:
    api_key: str = "sk-ant-test-keel"
    chat: ChatScript = field(default_factory=ChatScript)

    async def messages(self, request: Request):
        # The SDK sends the key as x-api-key or, in recent versions, as a bearer token.
        if self.api_key not in (request.headers.get("x-api-key"), request.headers.get("authorization", "")[7:]):
            return JSONResponse(error_body(401, "invalid x-api-key"), status_code=401)
        body = await request.json()
        refused = await self.chat.refusal(body, error_body)
        if refused is not None:
            return refused
        texts = [body.get("system") or ""] + [m["content"] for m in body["messages"]]
        prompt = prompt_tokens(texts)
        if body.get("tools"):
            return JSONResponse(self._tool_answer(body, prompt))
        return StreamingResponse(self._events(body, prompt), media_type="text/event-stream")

    def _tool_answer(self, body: dict, prompt: int) -> dict:
        tool = body["tools"][0]
        arguments = {key: self.chat.reply[:40] for key in tool["input_schema"].get("properties", {})}
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "tool_use", "id": "toolu_fake", "name": tool["name"], "input": arguments}],
                "stop_reason": "tool_use", "stop_sequence": None,
                "usage": {"input_tokens": prompt, "output_tokens": 12}}

    async def _events(self, body: dict, prompt: int):
        sent, done, error_at = 0, False, self.chat.take_stream_error()
        try:
            yield sse("message_start", {"type": "message_start", "message": {
                "id": "msg_fake", "type": "message", "role": "assistant", "content": [], "model": body["model"],
                "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": prompt, "output_tokens": 1}}})
            yield sse("content_block_start", {"type": "content_block_start", "index": 0,
                                              "content_block": {"type": "text", "text": ""}})
            yield sse("ping", {"type": "ping"})
            for token in self.chat.tokens():
                if error_at is not None and sent >= error_at:  # e.g. overloaded while answering
                    yield sse("error", error_body(529, "Overloaded"))
                    done = True
                    return
                if self.chat.cut_after_tokens is not None and sent >= self.chat.cut_after_tokens:
                    raise CutConnection()
                await self.chat.pace()
                yield sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "text_delta", "text": token}})
                sent += 1
            yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            yield sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                                           "stop_sequence": None},
                                        "usage": {"output_tokens": sent}})
            yield sse("message_stop", {"type": "message_stop"})
            done = True
        finally:
            if done:
                self.chat.finished += 1
            else:
                self.chat.disconnected += 1

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])

    def serve(self) -> ServedApp:
        """`with fake.serve() as served:` KEEL_ANTHROPIC_BASE_URL is `served.url`."""
        return ServedApp(self.app(), free_port())
