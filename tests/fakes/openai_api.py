"""A local server speaking OpenAI's HTTP API for the endpoints Keel uses, so the real `openai` SDK talks to it.

Embeddings are deterministic: hashed bag of words, unit length, so similar texts get similar vectors and
search over them means something. The server can be told to fail the next calls (status, Retry-After).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tests.fakes.chat_script import ChatScript, CutConnection, prompt_tokens
from tests.fakes.oauth_provider import ServedApp
from tests.net import free_port

_WORD = re.compile(r"[a-z0-9]+")
NATIVE_SIZES = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}




def hashed_embedding(text: str, dimensions: int) -> list[float]:
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dimensions] += 1.0 if digest[4] % 2 else -1.0
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


def error_body(status: int, message: str) -> dict:
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error", 401: "invalid_request_error"}
    return {"error": {"message": message, "type": kind.get(status, "server_error"), "param": None,
                      "code": "rate_limit_exceeded" if status == 429 else None}}


@dataclass
class FakeOpenAI:
    api_key: str = "sk-test-keel"
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    calls: int = 0
    inputs: int = 0
    passes_before_failing: int = 0
    chat: ChatScript = field(default_factory=ChatScript)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 500, retry_after_ms: int | None = 5, *, after: int = 0) -> None:
        """The next `count` calls fail (after `after` more successful ones)."""
        headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
        with self._lock:
            self.passes_before_failing = after
            self.failures.extend([(status, headers)] * count)

    def heal(self) -> None:
        with self._lock:
            self.failures.clear()

    def _failure(self) -> JSONResponse | None:
        with self._lock:
            self.calls += 1
            if self.passes_before_failing > 0:
                self.passes_before_failing -= 1
                return None
            if not self.failures:
                return None
            status, headers = self.failures.pop(0)
        return JSONResponse(error_body(status, "the fake was told to fail"), status_code=status, headers=headers)

    async def embeddings(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse(error_body(401, "Incorrect API key provided"), status_code=401)
        failure = self._failure()
        if failure is not None:
            return failure
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = body.get("dimensions") or NATIVE_SIZES.get(body["model"], 256)
        with self._lock:
            self.inputs += len(texts)
        tokens = sum(len(_WORD.findall(text.lower())) for text in texts)
        return JSONResponse({
            "object": "list",
            "data": [{"object": "embedding", "index": index, "embedding": hashed_embedding(text, dimensions)}
                     for index, text in enumerate(texts)],
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    async def chat_completions(self, request: Request):
        """Chat completions as OpenAI streams them: `data: {chunk}` SSE frames, a final chunk with
        finish_reason, a usage chunk (stream_options.include_usage) with empty choices, `data: [DONE]`."""
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse(error_body(401, "Incorrect API key provided"), status_code=401)
        body = await request.json()
        refused = await self.chat.refusal(body, error_body)
        if refused is not None:
            return refused
        prompt = prompt_tokens([m["content"] for m in body["messages"]])
        if "response_format" in body:
            return JSONResponse(self._structured(body, prompt))
        return StreamingResponse(self._chunks(body, prompt), media_type="text/event-stream")

    def _structured(self, body: dict, prompt: int) -> dict:
        schema = body["response_format"]["json_schema"]["schema"]
        answer = self.chat.structured_reply or {key: self.chat.reply[:40] for key in schema.get("properties", {})}
        content = json.dumps(answer)
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content, "refusal": None}}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": 9, "total_tokens": prompt + 9}}

    async def _chunks(self, body: dict, prompt: int):
        def frame(delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> str:
            chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
                     "model": body["model"], "system_fingerprint": "fp_fake",
                     "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                     if choices else [], "usage": usage}
            return f"data: {json.dumps(chunk)}\n\n"

        sent, done, error_at = 0, False, self.chat.take_stream_error()
        try:
            yield frame({"role": "assistant", "content": "", "refusal": None})
            for token in self.chat.tokens():
                if error_at is not None and sent >= error_at:  # as OpenAI reports an error mid-stream
                    yield f"data: {json.dumps(error_body(500, 'The server had an error while processing'))}\n\n"
                    done = True
                    return
                if self.chat.cut_after_tokens is not None and sent >= self.chat.cut_after_tokens:
                    raise CutConnection()
                await self.chat.pace()
                yield frame({"content": token})
                sent += 1
            yield frame({}, finish="stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                yield frame({}, usage={"prompt_tokens": prompt, "completion_tokens": sent,
                                       "total_tokens": prompt + sent}, choices=False)
            yield "data: [DONE]\n\n"
            done = True
        finally:
            if done:
                self.chat.finished += 1
            else:
                self.chat.disconnected += 1

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                                 Route("/v1/chat/completions", self.chat_completions, methods=["POST"])])

    def serve(self) -> ServedApp:
        """`with fake.serve() as served:` the SDK's base URL is `served.url + "/v1"`."""
        return ServedApp(self.app(), free_port())
