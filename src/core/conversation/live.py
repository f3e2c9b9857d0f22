"""Answers being generated in this process: a buffer per message that any number of subscribers follow
from an offset (a reconnecting client resumes where it was). The generation runs in its own task; when
its last subscriber leaves it is cancelled after a grace period, unless someone re-attaches."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

from src.ports.conversation import Message


@dataclass(frozen=True, slots=True)
class Delta:
    offset: int  # characters of the answer before `text`
    text: str


@dataclass
class LiveAnswer:
    message_id: UUID
    pieces: list[str] = field(default_factory=list)
    size: int = 0
    final: Message | None = None
    subscribers: int = 0
    task: asyncio.Task | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def append(self, text: str) -> None:
        self.pieces.append(text)
        self.size += len(text)
        self._wake()

    def finish(self, message: Message) -> None:
        self.final = message
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def text_from(self, offset: int) -> str:
        return "".join(self.pieces)[offset:]

    def piece_at(self, offset: int) -> tuple[int, int]:
        """(index of the piece holding character `offset`, characters of that piece before it)."""
        start = 0
        for index, piece in enumerate(self.pieces):
            if start + len(piece) > offset:
                return index, offset - start
            start += len(piece)
        return len(self.pieces), 0


class LiveAnswers:
    def __init__(self, grace_seconds: float = 0.0) -> None:
        self._grace = grace_seconds
        self._answers: dict[UUID, LiveAnswer] = {}

    def get(self, message_id: UUID) -> LiveAnswer | None:
        return self._answers.get(message_id)

    def start(self, message_id: UUID, generate: Callable[[LiveAnswer], Awaitable[None]]) -> LiveAnswer:
        answer = LiveAnswer(message_id)
        self._answers[message_id] = answer

        async def run() -> None:
            try:
                await generate(answer)
            finally:
                self._answers.pop(message_id, None)
                answer._wake()

        answer.task = asyncio.create_task(run())
        return answer

    async def follow(self, answer: LiveAnswer, offset: int) -> AsyncIterator[Delta | Message]:
        """Deltas from `offset`, then the final message. Leaving early may cancel the generation.
        A follower that falls behind gets what piled up as one delta: under load there are fewer, larger
        events instead of a growing backlog; a keeping-up follower gets one delta per token."""
        answer.subscribers += 1
        index, skip = answer.piece_at(offset)
        try:
            while True:
                waiter = answer.changed
                if index < len(answer.pieces):
                    pending = answer.pieces[index:]
                    index += len(pending)
                    text = "".join(pending)[skip:]
                    skip = 0
                    yield Delta(offset, text)
                    offset += len(text)
                    continue
                if answer.final is not None:
                    yield answer.final
                    return
                if answer.task is not None and answer.task.done():
                    return
                await waiter.wait()
        finally:
            answer.subscribers -= 1
            if answer.subscribers == 0 and answer.final is None and answer.task is not None:
                self._cancel_later(answer)

    def _cancel_later(self, answer: LiveAnswer) -> None:
        async def cancel() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(self._grace)
            if answer.subscribers == 0 and answer.task is not None and not answer.task.done():
                answer.task.cancel()

        if self._grace <= 0:
            answer.task.cancel()
        else:
            asyncio.get_running_loop().create_task(cancel())

    async def stop_all(self) -> None:
        """At shutdown: cancel every generation (each stores its partial answer) and wait for them."""
        tasks = [answer.task for answer in self._answers.values() if answer.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
