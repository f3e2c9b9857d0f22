"""The live feed over Postgres LISTEN/NOTIFY (the default): one dedicated connection per API process, outside
the pool (a listening connection must stay open); a batch is one `pg_notify` round trip. The connection is
re-made, with its LISTENs, when it is lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from src.adapters.live.channels import WANTED, ChannelFeed

log = logging.getLogger(__name__)
FAILURES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class PgAnswerFeed(ChannelFeed):
    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = dsn
        self._connection: asyncpg.Connection | None = None
        self._using = asyncio.Lock()  # one statement at a time on the connection
        self._lost = asyncio.Event()

    async def start(self) -> None:
        self._using, self._lost = asyncio.Lock(), asyncio.Event()  # of this event loop
        await super().start()

    async def _deliver(self, batch: list[tuple[str, str]]) -> None:
        try:
            async with self._using:
                connection = await self._connected()
                await connection.execute("SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)",
                                         [c for c, _ in batch], [p for _, p in batch])
        except FAILURES:
            self._drop()
            raise

    async def _listen(self, channel: str) -> None:
        try:
            async with self._using:
                connection = await self._connected()
                await connection.add_listener(channel, self._notified)
        except FAILURES as exc:  # listened to once the connection is back; checkpoints meanwhile
            log.debug("live feed: cannot listen yet: %s", exc)
            self._drop()

    async def _unlisten(self, channel: str) -> None:
        with contextlib.suppress(*FAILURES):
            async with self._using:
                if self._connection is not None and not self._connection.is_closed():
                    await self._connection.remove_listener(channel, self._notified)

    async def _disconnect(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(*FAILURES):
                await self._connection.close(timeout=2)

    async def _connected(self) -> asyncpg.Connection:
        """The connection, made (with every LISTEN this process needs) if there is none. Under `_using`."""
        if self._connection is not None and not self._connection.is_closed():
            return self._connection
        connection = await asyncpg.connect(self._dsn, timeout=5, server_settings={"application_name": "keel-live"})
        try:
            connection.add_termination_listener(lambda _: self._lost.set())
            await connection.add_listener(WANTED, self._notified)
            for channel in list(self._subscriptions):
                await connection.add_listener(channel, self._notified)
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

    def _notified(self, _connection: object, _pid: int, channel: str, payload: str) -> None:
        self._received(channel, payload)
