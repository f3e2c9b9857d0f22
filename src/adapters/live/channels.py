"""What the live feed's transports share: a channel per followed answer and one for the requests, text split
into payloads that fit a notification, this process's subscribers, and an outbox sent in order, in batches
(one round trip each). A transport makes the connection, listens, delivers a batch and reports what it
receives; what it loses (a restart of its server) the followers ask for again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from uuid import UUID

from src.ports.live import FeedEnd, FeedEvent, FeedText

log = logging.getLogger(__name__)
WANTED = "keel_live_wanted"  # the requests: an answer wanted from an offset, or stopped
STOP = "stop"
PAYLOAD_BYTES = 7000  # Postgres refuses notifications of 8000 bytes and more
QUEUED = 2000  # events a follower may have waiting before the newest are dropped (it asks again)


def channel_of(message_id: UUID) -> str:
    return f"keel_live_{message_id.hex}"


def payloads(event: FeedEvent) -> list[str]:
    if isinstance(event, FeedEnd):
        return ['{"end":true}']
    found, offset, text = [], event.offset, event.text
    while text:
        size = min(len(text), PAYLOAD_BYTES // 4)  # 4 bytes a character at most in UTF-8...
        payload = json.dumps({"o": offset, "t": text[:size]}, ensure_ascii=False)
        while len(payload.encode()) > PAYLOAD_BYTES:  # ...but escapes take more: halve until it fits
            size //= 2
            payload = json.dumps({"o": offset, "t": text[:size]}, ensure_ascii=False)
        found.append(payload)
        offset, text = offset + size, text[size:]
    return found


def event_of(payload: str) -> FeedEvent:
    data = json.loads(payload)
    return FeedEnd() if data.get("end") else FeedText(int(data["o"]), str(data["t"]))


class Subscription:
    def __init__(self) -> None:
        self.events: asyncio.Queue[FeedEvent] = asyncio.Queue(QUEUED)

    async def next(self, timeout: float) -> FeedEvent | None:
        if not self.events.empty():
            return self.events.get_nowait()
        try:
            return await asyncio.wait_for(self.events.get(), timeout)
        except TimeoutError:
            return None


class ChannelFeed(ABC):
    """An AnswerFeed over a publish/subscribe transport."""

    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._handlers: list[Callable[[UUID, int], None]] = []
        self._stoppers: list[Callable[[UUID], None]] = []
        self._outbox: list[tuple[str, str]] = []
        self._queued = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @abstractmethod
    async def _keep_connected(self) -> None:
        """Runs until cancelled: (re)connects and listens to WANTED and every subscribed channel."""

    @abstractmethod
    async def _deliver(self, batch: list[tuple[str, str]]) -> None: ...

    @abstractmethod
    async def _listen(self, channel: str) -> None: ...

    @abstractmethod
    async def _unlisten(self, channel: str) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    def on_wanted(self, handler: Callable[[UUID, int], None]) -> None:
        self._handlers.append(handler)

    def on_stop(self, handler: Callable[[UUID], None]) -> None:
        self._stoppers.append(handler)

    async def start(self) -> None:
        self._queued = asyncio.Event()  # of this event loop (an app started again may run on another)
        self._tasks = [asyncio.create_task(self._keep_connected()), asyncio.create_task(self._send())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._disconnect()

    @contextlib.asynccontextmanager
    async def subscribe(self, message_id: UUID) -> AsyncIterator[Subscription]:
        channel, subscription = channel_of(message_id), Subscription()
        first = channel not in self._subscriptions
        self._subscriptions.setdefault(channel, set()).add(subscription)
        try:
            if first:
                await self._listen(channel)
            yield subscription
        finally:
            subscribed = self._subscriptions.get(channel, set())
            subscribed.discard(subscription)
            if not subscribed:
                self._subscriptions.pop(channel, None)
                await self._unlisten(channel)

    async def want(self, message_id: UUID, offset: int) -> None:
        self._queue(WANTED, f"{message_id} {offset}")

    async def stop(self, message_id: UUID) -> None:
        self._queue(WANTED, f"{message_id} {STOP}")

    async def publish(self, message_id: UUID, events: list[FeedEvent]) -> None:
        channel = channel_of(message_id)
        for event in events:
            for payload in payloads(event):
                self._queue(channel, payload)

    def _queue(self, channel: str, payload: str) -> None:
        self._outbox.append((channel, payload))
        self._queued.set()

    async def _send(self) -> None:
        """Everything queued since the last round trip goes in the next one, in order."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            batch, self._outbox = self._outbox, []
            try:
                await self._deliver(batch)
            except Exception as exc:  # best effort, whatever the transport raised: the followers ask again
                log.debug("live feed: %d events not sent: %s", len(batch), exc)

    def _received(self, channel: str, payload: str) -> None:
        if channel == WANTED:
            self._asked(payload)
            return
        event = event_of(payload)
        for subscription in self._subscriptions.get(channel, ()):
            with contextlib.suppress(asyncio.QueueFull):  # it will see a gap and ask again
                subscription.events.put_nowait(event)

    def _asked(self, payload: str) -> None:
        """`<message id> <offset>` (send it from there) or `<message id> stop`."""
        message_id, _, what = payload.partition(" ")
        try:
            answer = UUID(message_id)
            offset = None if what == STOP else int(what)
        except ValueError:
            return  # not ours
        if offset is None:
            for stopper in self._stoppers:
                stopper(answer)
        else:
            for handler in self._handlers:
                handler(answer, offset)
