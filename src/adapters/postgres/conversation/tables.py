"""Conversation tables: conversations per workspace and user, their messages, and the usage ledger
(one row per model call: a reservation first, then the settled actual usage)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Float, ForeignKey, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from src.adapters.postgres.base import Base, created_at_column


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200), server_default="")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))

    __table_args__ = (Index("ix_conversations_owner_recent", "workspace_id", "user_id", "updated_at", "id"),)


class MessageRow(Base):
    __tablename__ = "messages"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, server_default="")
    status: Mapped[str] = mapped_column(String(16), server_default="complete")
    created_at: Mapped[datetime] = created_at_column()
    model: Mapped[str | None] = mapped_column(String(100))
    template: Mapped[str | None] = mapped_column(String(100))
    prompt_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    cost_usd: Mapped[float] = mapped_column(Float, server_default="0")
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    sources: Mapped[list] = mapped_column(JSONB, server_default="[]")
    error: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    progress_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stop_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # seen at a checkpoint
    rating: Mapped[str | None] = mapped_column(String(8))  # the owner's verdict: up, down
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)  # insertion order within a second

    # the answers being generated (few): what the sweeper of stalled answers reads
    __table_args__ = (Index("ix_messages_streaming", "created_at", postgresql_where=text("status = 'streaming'")),)


class UsageRecordRow(Base):
    __tablename__ = "usage_records"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    message_id: Mapped[uuid.UUID] = mapped_column()
    model: Mapped[str] = mapped_column(String(100), server_default="")
    day: Mapped[date] = mapped_column(Date)
    reserved_tokens: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    cost_usd: Mapped[float] = mapped_column(Float, server_default="0")
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16), server_default="graphql")  # graphql, openai, ai-sdk, worker

    __table_args__ = (Index("ix_usage_records_workspace_day", "workspace_id", "day"),
                      Index("ix_usage_records_unsettled_message", "message_id",
                            postgresql_where=text("settled_at IS NULL")))


class UsageDayRow(Base):
    """The day's running totals of the ledger, per workspace (subject = the workspace) and per member (subject =
    the user): a reservation adds to both rows in one upsert whose row locks serialise the workspace's
    concurrent reservations, and reads its totals from them, in O(1) whatever the day's traffic."""

    __tablename__ = "usage_days"
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInteger)  # reserved while unsettled, then actually used
    cost_usd: Mapped[float] = mapped_column(Float)
    calls: Mapped[int] = mapped_column(Integer)
