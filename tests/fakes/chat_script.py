"""What a fake chat provider does on its next calls: the reply, the pace, failures (status + Retry-After),
a connection cut mid-stream, an error event inside the stream, a hang. Shared by the OpenAI and Anthropic
fakes, which differ only in their wire format. Also records what reached the provider and how streams
ended."""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field

from starlette.responses import JSONResponse

_TOKEN = re.compile(r"\S+\s*")


@dataclass
class Failure:
    status: int
    retry_after: str | None = None  # sent as the Retry-After header verbatim (seconds or an HTTP-date)


@dataclass
class ChatScript:
    reply: str = "Glaciers carve fjords as they move [1]. Ice then retreats and the sea fills the valley [1]."
    token_delay: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    cut_after_tokens: int | None = None  # close the connection after this many tokens
    hang: bool = False  # accept the request, never answer
    stream_errors: list[int] = field(default_factory=list)  # next streams: tokens sent before an error event
    structured_reply: dict | None = None  # the JSON a structured-output request gets (else the schema filled)
    requests: list[dict] = field(default_factory=list)
    finished: int = 0  # streams sent to the end
    disconnected: int = 0  # streams the client closed before the end
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int, retry_after: str | None = None) -> None:
        with self._lock:
            self.failures.extend(Failure(status, retry_after) for _ in range(count))

    def take_failure(self, body: dict) -> Failure | None:
        with self._lock:
            self.requests.append(body)
            return self.failures.pop(0) if self.failures else None

    def take_stream_error(self) -> int | None:
        with self._lock:
            return self.stream_errors.pop(0) if self.stream_errors else None

    async def refusal(self, body: dict, error_body) -> JSONResponse | None:
        """Records the request; hangs if told to; answers the next scripted failure in the provider's shape."""
        failure = self.take_failure(body)
        await self.maybe_hang()
        if failure is None:
            return None
        headers = {"retry-after": failure.retry_after} if failure.retry_after else {}
        return JSONResponse(error_body(failure.status, "the fake was told to fail"), status_code=failure.status,
                            headers=headers)

    def tokens(self) -> list[str]:
        return _TOKEN.findall(self.reply)

    async def pace(self) -> None:
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        else:
            await asyncio.sleep(0)

    async def maybe_hang(self) -> None:
        if self.hang:
            await asyncio.sleep(3600)


class CutConnection(Exception):
    """Raised inside a streaming body: uvicorn drops the connection mid-response."""


def prompt_tokens(texts: list[str]) -> int:
    return sum(len(_TOKEN.findall(text)) for text in texts) or 1
