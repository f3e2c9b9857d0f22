"""Conversation's unit of work: conversations, messages, the usage ledger (budgets are reserved in it) and the
answers' analytics."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.conversation.analytics import PgAnswerAnalytics
from src.adapters.postgres.conversation.repositories import PgConversationRepository, PgMessageRepository, PgUsageLedger
from src.adapters.postgres.unit_of_work import PgUnitOfWork


class PgConversationUnitOfWork(PgUnitOfWork):
    conversations: PgConversationRepository
    messages: PgMessageRepository
    usage: PgUsageLedger
    analytics: PgAnswerAnalytics

    def _open(self, db: AsyncSession) -> None:
        self.conversations = PgConversationRepository(db)
        self.messages = PgMessageRepository(db)
        self.usage = PgUsageLedger(db)
        self.analytics = PgAnswerAnalytics(db)
