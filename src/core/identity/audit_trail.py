"""Writing audit events (inside the caller's transaction) and reading them (admins only)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from src.core.identity.authorize import require
from src.ports.identity import AuditEvent, ClientInfo, IdentityUnitOfWork, Permission, Principal
from src.ports.shared import InvalidInput

MAX_PAGE = 200


async def audit(uow: IdentityUnitOfWork, at: datetime, action: str, actor_id: UUID | None, client: ClientInfo,
                *, subject: str = "", details: dict[str, Any] | None = None) -> None:
    await uow.audit.record(AuditEvent(uuid.uuid4(), at, action, actor_id, subject, client.ip,
                                      client.user_agent[:300], details or {}))


class QueryAuditLog:
    """- Admins only. Newest first; page with `before` (the `at` of the last event seen)."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork]) -> None:
        self._uow = uow

    async def execute(self, principal: Principal | None, *, action: str | None = None, actor_id: UUID | None = None,
                      before: datetime | None = None, limit: int = 50) -> list[AuditEvent]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        async with self._uow() as uow:
            await require(uow, principal, Permission.AUDIT_READ)
            return await uow.audit.query(action=action, actor_id=actor_id, before=before, limit=limit)
