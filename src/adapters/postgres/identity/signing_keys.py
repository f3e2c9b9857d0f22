"""Signing keys kept in the database, so every process of a deployment signs and verifies with the same
key with no configuration; the first process to need one creates it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from src.adapters.postgres.identity.tables import SigningKeyRow


class PgSigningKeyStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def load_or_create(self, name: str, generate: Callable[[], str]) -> str:
        async with self._sessions() as session, session.begin():
            # Racing processes both insert; DO NOTHING keeps the first, and everyone reads that one back.
            await session.execute(
                insert(SigningKeyRow).values(name=name, private_pem=generate()).on_conflict_do_nothing()
            )
            return (await session.execute(select(SigningKeyRow.private_pem).where(SigningKeyRow.name == name))
                    ).scalar_one()
