"""Ports for metering model use, shared by every domain that calls a model: the usage ledger behind budgets
(a reservation before a call, settled on the actual usage after), its day totals and its reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, runtime_checkable
from uuid import UUID

from src.ports.models import Usage
from src.ports.shared import UnitOfWork


@dataclass(frozen=True, slots=True)
class Spender:
    """Whose budget a model call spends besides the workspace's: a member's (None: the workspace's alone),
    and an API key's with its own daily cap."""

    user_id: UUID | None
    api_key_id: UUID | None = None
    key_daily_tokens: int | None = None
    channel: str = "graphql"  # the API it came through: graphql, openai, ai-sdk, worker


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a conversation belongs to: `api_key_id` None = the member themselves (through a session)."""

    user_id: UUID
    api_key_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    tokens: int  # settled actual tokens + open reservations
    cost_usd: float
    requests: int


@dataclass(frozen=True, slots=True)
class Reservation:
    id: UUID
    workspace_id: UUID
    user_id: UUID | None  # None: spent for the workspace, not a member (e.g. graph extraction of an API upload)
    message_id: UUID
    model: str
    day: date
    reserved_tokens: int
    created_at: datetime
    api_key_id: UUID | None = None  # spent through this API key (it has a day's total of its own)
    channel: str = "graphql"


@dataclass(frozen=True, slots=True)
class DayTotals:
    """The day's totals, just before a reservation, of its workspace, its member and its API key."""

    workspace: UsageTotals
    member: UsageTotals
    api_key: UsageTotals


@dataclass(frozen=True, slots=True)
class UsageRow:
    day: date
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    channel: str = "graphql"


@runtime_checkable
class UsageLedger(Protocol):
    async def reserve(self, reservation: Reservation) -> DayTotals:
        """Records the reservation; returns the day's totals of its workspace, user and API key as they were
        just before it. From here to the end of the transaction the workspace's other reservations wait, so
        none slips in between a budget decision and its commit (or rollback)."""
        ...

    async def settle(self, reservation_id: UUID, model: str, usage: Usage, cost_usd: float, now: datetime) -> None:
        """Replaces the reservation by the actual usage (once; settling again changes nothing)."""
        ...

    async def unsettled(self, message_id: UUID) -> Reservation | None:
        """The reservation made for a message, while it is not settled."""
        ...

    async def report(self, workspace_id: UUID, since: date, owner: Owner | None = None) -> list[UsageRow]:
        """The workspace's usage per day and model; `owner`: only what that member (or API key) spent."""
        ...


class MeteredUnitOfWork(UnitOfWork, Protocol):
    """Any domain's unit of work that records model spend."""

    usage: UsageLedger
