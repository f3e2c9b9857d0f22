"""System tables: worker probes (a job round-trip from the app through a worker into the DB), periodic job
schedules, rate-limit quotas, the job outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Double, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from src.adapters.postgres.base import Base


class WorkerProbeRow(Base):
    __tablename__ = "worker_probes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_by: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")


class JobScheduleRow(Base):
    """When each periodic job runs next; the UPDATE that moves it is how one worker wins a run."""

    __tablename__ = "job_schedules"

    job_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateLimitRow(Base):
    """A rate-limit quota's theoretical arrival time (epoch seconds). Unlogged: cheap writes, and after a
    crash every quota simply starts whole."""

    __tablename__ = "rate_limits"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    tat: Mapped[float] = mapped_column(Double)


class JobOutboxRow(Base):
    """A job recorded in the transaction of the change that caused it; deleted once the broker has it."""

    __tablename__ = "job_outbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kwargs: Mapped[dict] = mapped_column(JSONB)
    context: Mapped[dict] = mapped_column(JSONB, server_default="{}")  # the request's ids, for the worker's logs
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
