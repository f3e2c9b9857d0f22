"""Sessions, refresh tokens, API keys, one-time tokens, OAuth state/identities, audit, failed attempts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from uuid import UUID

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.identity.tables import (
    ApiKeyRow,
    AuditEventRow,
    AuthAttemptRow,
    OAuthIdentityRow,
    OAuthStateRow,
    OneTimeTokenRow,
    RefreshTokenRow,
    SessionRow,
    UserRow,
)
from src.adapters.postgres.mapping import to_record, values_of
from src.ports.identity import (
    ApiKey,
    AttemptCount,
    AuditEvent,
    OAuthState,
    OneTimeToken,
    Permission,
    RefreshToken,
    Role,
    Session,
    User,
)

# Attempt counters: rows made on first use, then held (row lock) in key order, so concurrent attempts on
# overlapping keys queue instead of deadlocking.
_ATTEMPTS = AuthAttemptRow.__table__.name
_NEW_ATTEMPT_KEYS = text(f"INSERT INTO {_ATTEMPTS} (key) SELECT unnest(CAST(:keys AS text[])) ORDER BY 1 "
                         "ON CONFLICT (key) DO NOTHING")
_HELD_ATTEMPTS = text(f"SELECT key, attempts, window_started_at, last_attempt_at FROM {_ATTEMPTS} "
                      "WHERE key = ANY(CAST(:keys AS text[])) ORDER BY key FOR UPDATE")
_SAVE_ATTEMPTS = text(f"UPDATE {_ATTEMPTS} AS a SET attempts = n.attempts, window_started_at = n.started, "
                      "last_attempt_at = n.last FROM unnest(CAST(:keys AS text[]), CAST(:attempts AS int[]), "
                      "CAST(:started AS timestamptz[]), CAST(:last AS timestamptz[])) AS n(key, attempts, started, "
                      "last) WHERE a.key = n.key")
_CLEAR_ATTEMPTS = text(f"DELETE FROM {_ATTEMPTS} WHERE key = ANY(CAST(:keys AS text[])) OR EXISTS (SELECT 1 FROM "
                       "unnest(CAST(:prefixes AS text[])) AS p WHERE starts_with(key, p))")

# Read on every request: plain rows of both tables in one statement, without the ORM's per-object CPU.
_SESSIONS, _USERS = SessionRow.__table__, UserRow.__table__
_SESSION_WITH_USER = select(*_SESSIONS.c, *_USERS.c).join_from(_SESSIONS, _USERS, _USERS.c.id == _SESSIONS.c.user_id) \
    .where(_SESSIONS.c.id == bindparam("session_id"))


class _Repository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _one(self, query):
        return (await self._session.execute(query)).scalar_one_or_none()


class PgSessionRepository(_Repository):
    async def add(self, session: Session) -> None:
        self._session.add(SessionRow(**values_of(session)))
        await self._session.flush()

    async def get(self, session_id: UUID) -> Session | None:
        row = await self._one(select(SessionRow).where(SessionRow.id == session_id))
        return None if row is None else to_record(row, Session)

    async def get_with_user(self, session_id: UUID) -> tuple[Session, User] | None:
        found = (await self._session.execute(_SESSION_WITH_USER, {"session_id": session_id})).first()
        if found is None:
            return None
        split = len(_SESSIONS.c)
        session = SimpleNamespace(**dict(zip(_SESSIONS.c.keys(), found[:split], strict=True)))
        user = SimpleNamespace(**dict(zip(_USERS.c.keys(), found[split:], strict=True)))
        return to_record(session, Session), to_record(user, User, role=Role(user.role))

    async def revoke(self, session_id: UUID, at: datetime) -> None:
        await self._session.execute(update(SessionRow).where(SessionRow.id == session_id,
                                                             SessionRow.revoked_at.is_(None)).values(revoked_at=at))

    async def active_among(self, session_ids: list[UUID]) -> set[UUID]:
        query = select(SessionRow.id).where(SessionRow.id.in_(session_ids), SessionRow.revoked_at.is_(None))
        return set((await self._session.execute(query)).scalars())

    async def revoke_all_of_user(self, user_id: UUID, at: datetime, keep: UUID | None = None) -> int:
        query = update(SessionRow).where(SessionRow.user_id == user_id, SessionRow.revoked_at.is_(None))
        if keep is not None:
            query = query.where(SessionRow.id != keep)
        return (await self._session.execute(query.values(revoked_at=at))).rowcount

    async def add_token(self, token: RefreshToken) -> None:
        self._session.add(RefreshTokenRow(**values_of(token)))
        await self._session.flush()

    async def token_by_hash(self, token_hash: str, *, for_update: bool = False) -> RefreshToken | None:
        query = select(RefreshTokenRow).where(RefreshTokenRow.token_hash == token_hash)
        row = await self._one(query.with_for_update() if for_update else query)
        return None if row is None else to_record(row, RefreshToken)

    async def mark_rotated(self, token_id: UUID, at: datetime) -> None:
        await self._session.execute(update(RefreshTokenRow).where(RefreshTokenRow.id == token_id)
                                    .values(rotated_at=at))


def _api_key(row: ApiKeyRow) -> ApiKey:
    return to_record(row, ApiKey, scopes=frozenset(Permission(scope) for scope in row.scopes))


class PgApiKeyRepository(_Repository):
    async def add(self, key: ApiKey) -> None:
        self._session.add(ApiKeyRow(**values_of(key, scopes=sorted(key.scopes))))
        await self._session.flush()

    async def get(self, key_id: UUID) -> ApiKey | None:
        row = await self._one(select(ApiKeyRow).where(ApiKeyRow.id == key_id))
        return None if row is None else _api_key(row)

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        row = await self._one(select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash))
        return None if row is None else _api_key(row)

    async def of_workspace(self, workspace_id: UUID) -> list[ApiKey]:
        query = select(ApiKeyRow).where(ApiKeyRow.workspace_id == workspace_id).order_by(ApiKeyRow.created_at)
        return [_api_key(row) for row in (await self._session.execute(query)).scalars()]

    async def save(self, key: ApiKey) -> None:
        await self._session.merge(ApiKeyRow(**values_of(key, scopes=sorted(key.scopes))))
        await self._session.flush()

    async def touch(self, key_id: UUID, at: datetime) -> None:
        await self._session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=at))

    async def active_among(self, key_ids: list[UUID]) -> set[UUID]:
        query = select(ApiKeyRow.id).where(ApiKeyRow.id.in_(key_ids), ApiKeyRow.revoked_at.is_(None))
        return set((await self._session.execute(query)).scalars())


class PgOneTimeTokenRepository(_Repository):
    async def add(self, token: OneTimeToken) -> None:
        self._session.add(OneTimeTokenRow(**values_of(token)))
        await self._session.flush()

    async def by_hash(self, token_hash: str, *, for_update: bool = False) -> OneTimeToken | None:
        query = select(OneTimeTokenRow).where(OneTimeTokenRow.token_hash == token_hash)
        row = await self._one(query.with_for_update() if for_update else query)
        return None if row is None else to_record(row, OneTimeToken)

    async def save(self, token: OneTimeToken) -> None:
        await self._session.merge(OneTimeTokenRow(**values_of(token)))
        await self._session.flush()


class PgOAuthRepository(_Repository):
    async def add_state(self, state: OAuthState) -> None:
        # Abandoned sign-ins leave states behind: each new one sweeps the expired ones.
        await self._session.execute(delete(OAuthStateRow).where(OAuthStateRow.expires_at < func.now()))
        self._session.add(OAuthStateRow(**values_of(state)))
        await self._session.flush()

    async def take_state(self, state_hash: str) -> OAuthState | None:
        query = delete(OAuthStateRow).where(OAuthStateRow.state_hash == state_hash).returning(OAuthStateRow)
        row = await self._one(query)
        return None if row is None else to_record(row, OAuthState)

    async def user_for(self, provider: str, subject: str) -> UUID | None:
        return await self._one(select(OAuthIdentityRow.user_id).where(OAuthIdentityRow.provider == provider,
                                                                       OAuthIdentityRow.subject == subject))

    async def link(self, provider: str, subject: str, user_id: UUID, email: str | None) -> None:
        await self._session.execute(
            insert(OAuthIdentityRow)
            .values(id=uuid.uuid4(), provider=provider, subject=subject, user_id=user_id, email=email)
            .on_conflict_do_update(index_elements=["provider", "subject"], set_={"user_id": user_id, "email": email})
        )


class PgAuditLog(_Repository):
    async def record(self, event: AuditEvent) -> None:
        self._session.add(AuditEventRow(**values_of(event)))
        await self._session.flush()

    async def query(self, *, action: str | None, actor_id: UUID | None, before: datetime | None,
                    limit: int) -> list[AuditEvent]:
        query = select(AuditEventRow).order_by(AuditEventRow.at.desc(), AuditEventRow.id.desc()).limit(limit)
        if action:
            query = query.where(AuditEventRow.action == action)
        if actor_id:
            query = query.where(AuditEventRow.actor_id == actor_id)
        if before:
            query = query.where(AuditEventRow.at < before)
        return [to_record(row, AuditEvent) for row in (await self._session.execute(query)).scalars()]


class PgAttemptLog(_Repository):
    async def hold(self, keys: list[str]) -> dict[str, AttemptCount]:
        await self._session.execute(_NEW_ATTEMPT_KEYS, {"keys": keys})
        rows = await self._session.execute(_HELD_ATTEMPTS, {"keys": keys})
        return {row.key: AttemptCount(row.key, row.attempts, row.window_started_at, row.last_attempt_at)
                for row in rows}

    async def save(self, counts: list[AttemptCount]) -> None:
        await self._session.execute(_SAVE_ATTEMPTS, {
            "keys": [c.key for c in counts], "attempts": [c.attempts for c in counts],
            "started": [c.window_started_at for c in counts], "last": [c.last_attempt_at for c in counts]})

    async def clear(self, keys: list[str], prefixes: Sequence[str] = ()) -> None:
        await self._session.execute(_CLEAR_ATTEMPTS, {"keys": keys, "prefixes": list(prefixes)})
