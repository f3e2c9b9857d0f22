"""Conversations, messages and the usage ledger in Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import date, datetime
from functools import cache
from uuid import UUID

from sqlalchemy import TextClause, bindparam, delete, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.conversation.tables import ConversationRow, MessageRow, UsageRecordRow
from src.adapters.postgres.mapping import to_record, values_of
from src.ports.conversation import (
    AnswerProgress,
    Checkpoint,
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    Rating,
    Source,
)
from src.ports.metering import DayTotals, Owner, Reservation, UsageRow, UsageTotals
from src.ports.models import Usage

# The writes on every answer's path, built once on the tables (not the ORM classes) and given their values
# as parameters: each costs about half the CPU of an ORM-entity statement rebuilt with .values() (measured).
_CONVERSATIONS, _MESSAGES = ConversationRow.__table__, MessageRow.__table__
_INSERT_CONVERSATION = _CONVERSATIONS.insert()
_TOUCH_CONVERSATION = update(_CONVERSATIONS).where(_CONVERSATIONS.c.id == bindparam("conversation_id"))
_FINISH_MESSAGE = update(_MESSAGES).where(_MESSAGES.c.id == bindparam("message_id"),
                                          _MESSAGES.c.status == MessageStatus.STREAMING.value)
# The day's totals (usage_days, per workspace and per member) move with every reservation and settlement in
# one upsert: the workspace's row first, then the user's, so two transactions never wait on each other
# crosswise; the row lock taken on the workspace's row serialises its reservations until the commit.
_ADD_TO_DAY = """
    INSERT INTO usage_days AS d (workspace_id, day, subject_id, tokens, cost_usd, calls)
    SELECT {workspace}, {day}, subject.id, {tokens}, {cost}, {calls}
    FROM {source} CROSS JOIN LATERAL unnest(ARRAY[{workspace}, {user}, {key}]) WITH ORDINALITY AS subject(id, position)
    WHERE subject.id IS NOT NULL ORDER BY subject.position
    ON CONFLICT (workspace_id, day, subject_id) DO UPDATE
    SET tokens = d.tokens + excluded.tokens, cost_usd = d.cost_usd + excluded.cost_usd,
        calls = d.calls + excluded.calls"""
_RESERVE_AND_TOTAL = text("""
    WITH reserved AS (
        INSERT INTO usage_records (id, workspace_id, user_id, message_id, model, day, reserved_tokens, created_at,
                                   api_key_id, channel)
        VALUES (:id, :workspace_id, :user_id, :message_id, :model, :day, CAST(:reserved_tokens AS integer),
                :created_at, :api_key_id, :channel))""" + _ADD_TO_DAY.format(
    workspace="CAST(:workspace_id AS uuid)", user="CAST(:user_id AS uuid)", key="CAST(:api_key_id AS uuid)",
    day="CAST(:day AS date)",
    tokens="CAST(:reserved_tokens AS integer)", cost="0", calls="1", source="(VALUES (1)) AS one (n)") + """
    RETURNING d.subject_id, d.tokens - CAST(:reserved_tokens AS integer), d.cost_usd, d.calls - 1""")
_SETTLE = text("""
    WITH settled AS (
        UPDATE usage_records SET model = :model, prompt_tokens = CAST(:prompt_tokens AS integer),
            completion_tokens = CAST(:completion_tokens AS integer), cost_usd = CAST(:cost_usd AS float8),
            settled_at = :settled_at
        WHERE id = :reservation_id AND settled_at IS NULL
        RETURNING workspace_id, user_id, api_key_id, day, reserved_tokens)""" + _ADD_TO_DAY.format(
    workspace="settled.workspace_id", user="settled.user_id", key="settled.api_key_id", day="settled.day",
    tokens="CAST(:prompt_tokens AS integer) + CAST(:completion_tokens AS integer) - settled.reserved_tokens",
    cost="CAST(:cost_usd AS float8)", calls="0", source="settled"))
# Every answer a process is generating, checkpointed in one statement: the new text is appended only where the
# stored text has the length the process last saw (a repeated or late checkpoint appends nothing twice).
_SAVE_PROGRESS = text("""
    UPDATE messages AS m
    SET content = CASE WHEN length(m.content) = p.stored THEN m.content || p.piece ELSE m.content END,
        model = coalesce(p.model, m.model), progress_at = :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:offsets AS integer[]), CAST(:pieces AS text[]),
                CAST(:models AS text[])) AS p(id, stored, piece, model)
    WHERE m.id = p.id AND m.status = 'streaming'
    RETURNING m.id, length(m.content), m.stop_requested_at IS NOT NULL""")
_REQUEST_STOP = update(_MESSAGES).where(_MESSAGES.c.id == bindparam("message_id"),
                                        _MESSAGES.c.status == MessageStatus.STREAMING.value)


@cache
def _add_turn(new: bool, count: int) -> TextClause:
    """The conversation's insert (or title/updated_at update) as a CTE of the messages' multi-row insert: one
    round trip (the foreign key is checked at the end of the statement, after both). Plain SQL built from
    the tables once: SQLAlchemy does not cache the compiled form of a multi-row insert."""
    conversation = [f.name for f in fields(Conversation)] if new else ["id", "title", "updated_at"]
    message = [f.name for f in fields(Message)]
    if new:
        head = f"INSERT INTO conversations ({', '.join(conversation)}) VALUES ({_placeholders('c_', conversation)})"
    else:
        head = "UPDATE conversations SET title = :c_title, updated_at = :c_updated_at WHERE id = :c_id"
    rows = ", ".join(f"({_placeholders(f'm{i}_', message)})" for i in range(count))
    return text(f"WITH turn_conversation AS ({head}) INSERT INTO messages ({', '.join(message)}) VALUES {rows}"
                ).bindparams(*[bindparam(f"c_{name}", type_=_CONVERSATIONS.c[name].type) for name in conversation],
                             *[bindparam(f"m{i}_{name}", type_=_MESSAGES.c[name].type)
                               for i in range(count) for name in message])


def _placeholders(prefix: str, names: list[str]) -> str:
    return ", ".join(f":{prefix}{name}" for name in names)


def _sources(raw: list[dict]) -> tuple[Source, ...]:
    return tuple(Source(UUID(item["chunk_id"]), UUID(item["document_id"]), item["document_title"], item["score"],
                        item.get("flagged", False)) for item in raw)


def _message(row: MessageRow) -> Message:
    return to_record(row, Message, role=MessageRole(row.role), status=MessageStatus(row.status),
                     sources=_sources(row.sources))


def _message_values(message: Message) -> dict:
    sources = [{"chunk_id": str(s.chunk_id), "document_id": str(s.document_id), "document_title": s.document_title,
                "score": s.score, "flagged": s.flagged} for s in message.sources]
    return values_of(message, role=message.role.value, status=message.status.value, sources=sources)


class PgConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, conversation: Conversation) -> None:
        await self._session.execute(_INSERT_CONVERSATION, values_of(conversation))

    async def add_turn(self, conversation: Conversation, *messages: Message, new: bool) -> None:
        values = {f"c_{name}": value for name, value in values_of(conversation).items()}
        for index, message in enumerate(messages):
            values.update({f"m{index}_{name}": value for name, value in _message_values(message).items()})
        await self._session.execute(_add_turn(new, len(messages)), values)

    async def get(self, conversation_id: UUID) -> Conversation | None:
        row = await self._session.get(ConversationRow, conversation_id, populate_existing=True)
        return None if row is None else to_record(row, Conversation)

    async def save(self, conversation: Conversation) -> None:
        await self._session.execute(_TOUCH_CONVERSATION, {"conversation_id": conversation.id,
                                                          "title": conversation.title,
                                                          "updated_at": conversation.updated_at})

    async def delete(self, conversation_id: UUID) -> None:
        await self._session.execute(delete(ConversationRow).where(ConversationRow.id == conversation_id))

    async def page(self, workspace_id: UUID, owner: Owner, limit: int,
                   after: tuple[datetime, UUID] | None) -> list[Conversation]:
        query = (select(ConversationRow)
                 .where(ConversationRow.workspace_id == workspace_id, ConversationRow.user_id == owner.user_id,
                        ConversationRow.api_key_id.is_not_distinct_from(owner.api_key_id))
                 .order_by(ConversationRow.updated_at.desc(), ConversationRow.id.desc()).limit(limit))
        if after is not None:
            query = query.where(tuple_(ConversationRow.updated_at, ConversationRow.id) < tuple_(*after))
        return [to_record(row, Conversation) for row in (await self._session.execute(query)).scalars()]


class PgMessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, message_id: UUID) -> Message | None:
        row = await self._session.get(MessageRow, message_id, populate_existing=True)
        return None if row is None else _message(row)

    async def finish(self, message: Message) -> bool:
        values = _message_values(message)
        values["message_id"] = values.pop("id")
        return (await self._session.execute(_FINISH_MESSAGE, values)).rowcount == 1

    async def history(self, conversation_id: UUID, limit: int) -> list[Message]:
        rows = await self._session.execute(select(MessageRow).where(MessageRow.conversation_id == conversation_id)
                                           .order_by(MessageRow.seq.desc()).limit(limit))
        return [_message(row) for row in reversed(rows.scalars().all())]

    async def save_progress(self, progress: Sequence[AnswerProgress], now: datetime) -> Checkpoint:
        rows = (await self._session.execute(_SAVE_PROGRESS, {
            "ids": [p.message_id for p in progress], "offsets": [p.offset for p in progress],
            "pieces": [p.text for p in progress], "models": [p.model for p in progress], "now": now})).all()
        return Checkpoint({ident: length for ident, length, _ in rows}, {ident for ident, _, stop in rows if stop})

    async def rate(self, message_id: UUID, rating: Rating, comment: str | None, now: datetime) -> None:
        await self._session.execute(update(_MESSAGES).where(_MESSAGES.c.id == message_id).values(
            rating=rating.value, rating_comment=comment, rated_at=now))

    async def request_stop(self, message_id: UUID, now: datetime) -> bool:
        return (await self._session.execute(_REQUEST_STOP.values(stop_requested_at=now),
                                            {"message_id": message_id})).rowcount == 1

    async def stalled(self, before: datetime, limit: int) -> list[Message]:
        row = MessageRow
        rows = await self._session.execute(
            select(row).where(row.status == MessageStatus.STREAMING.value,
                              func.coalesce(row.progress_at, row.created_at) < before)
            .order_by(row.created_at).limit(limit).with_for_update(skip_locked=True))
        return [_message(found) for found in rows.scalars()]


class PgUsageLedger:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def reserve(self, reservation: Reservation) -> DayTotals:
        totals = {subject: UsageTotals(int(tokens), float(cost), int(calls)) for subject, tokens, cost, calls
                  in await self._session.execute(_RESERVE_AND_TOTAL, values_of(reservation))}
        nothing = UsageTotals(0, 0.0, 0)
        return DayTotals(totals[reservation.workspace_id], totals.get(reservation.user_id, nothing),
                         totals.get(reservation.api_key_id, nothing))

    async def settle(self, reservation_id: UUID, model: str, usage: Usage, cost_usd: float, now: datetime) -> None:
        await self._session.execute(_SETTLE, {
            "reservation_id": reservation_id, "model": model, "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens, "cost_usd": cost_usd, "settled_at": now})

    async def unsettled(self, message_id: UUID) -> Reservation | None:
        row = (await self._session.execute(select(UsageRecordRow).where(
            UsageRecordRow.message_id == message_id, UsageRecordRow.settled_at.is_(None)))).scalars().first()
        return None if row is None else to_record(row, Reservation)

    async def report(self, workspace_id: UUID, since: date, owner: Owner | None = None) -> list[UsageRow]:
        row = UsageRecordRow
        query = (select(row.day, row.model, func.count(), func.sum(row.prompt_tokens), func.sum(row.completion_tokens),
                        func.sum(row.cost_usd), row.channel)
                 .where(row.workspace_id == workspace_id, row.day >= since, row.settled_at.isnot(None))
                 .group_by(row.day, row.model, row.channel).order_by(row.day.desc(), row.model, row.channel))
        if owner is not None:
            query = query.where(row.user_id == owner.user_id, row.api_key_id.is_not_distinct_from(owner.api_key_id))
        return [UsageRow(day, model, int(n), int(p), int(c), float(cost), channel)
                for day, model, n, p, c, cost, channel in (await self._session.execute(query)).all()]
