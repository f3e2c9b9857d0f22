"""The live feed over Postgres LISTEN/NOTIFY: one dedicated connection per API process (outside the pool: a
listening connection must stay open), a channel per followed answer, one channel for the requests. What is
published is sent in batches, one round trip each, in order. A notification carries at most 8000 bytes, so
long text goes in several. The connection is re-made when it is lost (a database restart); what was sent
meanwhile is lost, and followers ask again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from uuid import UUID

import asyncpg

from src.ports.live import FeedEnd, FeedEvent, FeedText

log = logging.getLogger(__name__)
WANTED = "keel_live_wanted"
PAYLOAD_BYTES = 7000  # Postgres refuses notifications of 8000 bytes and more
QUEUED = 2000  # events a follower may have waiting before the newest are dropped (it asks again)
FAILURES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


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


class _Subscription:
    def __init__(self) -> None:
        self.events: asyncio.Queue[FeedEvent] = asyncio.Queue(QUEUED)

    async def next(self, timeout: float) -> FeedEvent | None:
        if not self.events.empty():
            return self.events.get_nowait()
        try:
            return await asyncio.wait_for(self.events.get(), timeout)
        except TimeoutError:
            return None


class PgAnswerFeed:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._connection: asyncpg.Connection | None = None
        self._using = asyncio.Lock()  # one statement at a time on the connection
        self._lost = asyncio.Event()
        self._subscriptions: dict[str, set[_Subscription]] = {}
        self._handlers: list[Callable[[UUID, int], None]] = []
        self._outbox: list[tuple[str, str]] = []
        self._queued = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def on_wanted(self, handler: Callable[[UUID, int], None]) -> None:
        self._handlers.append(handler)

    async def start(self) -> None:
        """Keeps the connection (and so this process's LISTENs) up, and sends what is published."""
        self._tasks = [asyncio.create_task(self._keep_connected()), asyncio.create_task(self._send())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._connection is not None:
            with contextlib.suppress(*FAILURES):
                await self._connection.close(timeout=2)

    @contextlib.asynccontextmanager
    async def subscribe(self, message_id: UUID) -> AsyncIterator[_Subscription]:
        channel, subscription = channel_of(message_id), _Subscription()
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
                async with self._using:
                    connection = await self._connected()
                    await connection.execute("SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)",
                                             [c for c, _ in batch], [p for _, p in batch])
            except FAILURES as exc:  # best effort: the followers ask again
                log.debug("live feed: %d events not sent: %s", len(batch), exc)
                self._drop()

    async def _listen(self, channel: str) -> None:
        try:
            async with self._using:
                connection = await self._connected()
                await connection.add_listener(channel, self._received)
        except FAILURES as exc:  # listened to once the connection is back; checkpoints meanwhile
            log.debug("live feed: cannot listen yet: %s", exc)
            self._drop()

    async def _unlisten(self, channel: str) -> None:
        with contextlib.suppress(*FAILURES):
            async with self._using:
                if self._connection is not None and not self._connection.is_closed():
                    await self._connection.remove_listener(channel, self._received)

    async def _connected(self) -> asyncpg.Connection:
        """The connection, made (with every LISTEN this process needs) if there is none. Under `_using`."""
        if self._connection is not None and not self._connection.is_closed():
            return self._connection
        connection = await asyncpg.connect(self._dsn, timeout=5, server_settings={"application_name": "keel-live"})
        try:
            connection.add_termination_listener(lambda _: self._lost.set())
            await connection.add_listener(WANTED, self._received)
            for channel in list(self._subscriptions):
                await connection.add_listener(channel, self._received)
        except BaseException:
            connection.terminate()
            raise
        self._connection = connection
        return connection

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None
        self._lost.set()

    async def _keep_connected(self) -> None:
        pause = 0.5
        while True:
            self._lost.clear()
            try:
                async with self._using:
                    await self._connected()
                pause = 0.5
                await self._lost.wait()
            except FAILURES as exc:
                log.warning("live feed: no connection to the database (%s); retrying in %.1f s", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _received(self, _connection: object, _pid: int, channel: str, payload: str) -> None:
        if channel == WANTED:
            message_id, _, offset = payload.partition(" ")
            try:
                wanted = UUID(message_id), int(offset)
            except ValueError:
                return  # not ours
            for handler in self._handlers:
                handler(*wanted)
            return
        event = event_of(payload)
        for subscription in self._subscriptions.get(channel, ()):
            with contextlib.suppress(asyncio.QueueFull):  # it will see a gap and ask again
                subscription.events.put_nowait(event)
