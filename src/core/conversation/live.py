"""Answers being generated in this process: a buffer per message that any number of subscribers follow
from an offset (a reconnecting client resumes where it was). The generation runs in its own task; when
its last subscriber leaves it is cancelled after a grace period, unless someone re-attaches. Every few
seconds the text produced since the last checkpoint is stored (`progress`, `stored`): readers on other
processes follow it from there, and a crash loses at most that much."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

from src.ports.conversation import AnswerProgress, Message


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
    task: asyncio.Task[None] | None = None
    stored: int = 0  # characters the last checkpoint stored
    model: str | None = None  # the model answering, once one streams
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: bool = False  # someone asked to stop it (rather than every subscriber leaving)

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

    def unfinished(self) -> int:
        return sum(1 for answer in self._answers.values() if answer.final is None)

    def progress(self) -> list[AnswerProgress]:
        """What every unfinished answer produced since its last checkpoint (possibly nothing: it is alive)."""
        return [AnswerProgress(answer.message_id, answer.stored, answer.text_from(answer.stored), answer.model)
                for answer in self._answers.values() if answer.final is None]

    def stored(self, lengths: dict[UUID, int]) -> None:
        for message_id, length in lengths.items():
            if (answer := self._answers.get(message_id)) is not None:
                answer.stored = length

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
            if answer.task is not None:
                answer.task.cancel()
        else:
            asyncio.get_running_loop().create_task(cancel())

    def stop(self, message_id: UUID) -> asyncio.Task[None] | None:
        """Stops the answer at once if this process generates it; returns its task (it stores the outcome)."""
        answer = self._answers.get(message_id)
        if answer is None or answer.task is None or answer.task.done():
            return None
        answer.stopped = True
        answer.task.cancel()
        return answer.task

    async def stop_all(self) -> None:
        """At shutdown: cancel every generation (each stores its partial answer) and wait for them."""
        tasks = [answer.task for answer in self._answers.values() if answer.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
