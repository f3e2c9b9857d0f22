"""Conversation's unit of work: conversations, messages and the usage ledger (budgets are reserved in it)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.conversation.repositories import PgConversationRepository, PgMessageRepository, PgUsageLedger
from src.adapters.postgres.unit_of_work import PgUnitOfWork


class PgConversationUnitOfWork(PgUnitOfWork):
    conversations: PgConversationRepository
    messages: PgMessageRepository
    usage: PgUsageLedger

    def _open(self, db: AsyncSession) -> None:
        self.conversations = PgConversationRepository(db)
        self.messages = PgMessageRepository(db)
        self.usage = PgUsageLedger(db)
