"""Identity's unit of work: accounts, workspaces, memberships, sign-in sessions, API keys, one-time tokens,
OAuth links, the audit trail, sign-in attempts and a person's data export/erasure, on one transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.identity.account_data import PgAccountData
from src.adapters.postgres.identity.accounts import PgMembershipRepository, PgUserRepository, PgWorkspaceRepository
from src.adapters.postgres.identity.auth import (
    PgApiKeyRepository,
    PgAttemptLog,
    PgAuditLog,
    PgOAuthRepository,
    PgOneTimeTokenRepository,
    PgSessionRepository,
)
from src.adapters.postgres.unit_of_work import PgUnitOfWork


class PgIdentityUnitOfWork(PgUnitOfWork):
    users: PgUserRepository
    workspaces: PgWorkspaceRepository
    memberships: PgMembershipRepository
    sessions: PgSessionRepository  # sign-in sessions, not database ones
    api_keys: PgApiKeyRepository
    one_time_tokens: PgOneTimeTokenRepository
    oauth: PgOAuthRepository
    audit: PgAuditLog
    attempts: PgAttemptLog
    account_data: PgAccountData  # reads and erases across modules: one person's data

    def _open(self, db: AsyncSession) -> None:
        self.users = PgUserRepository(db)
        self.workspaces = PgWorkspaceRepository(db)
        self.memberships = PgMembershipRepository(db)
        self.sessions = PgSessionRepository(db)
        self.api_keys = PgApiKeyRepository(db)
        self.one_time_tokens = PgOneTimeTokenRepository(db)
        self.oauth = PgOAuthRepository(db)
        self.audit = PgAuditLog(db)
        self.attempts = PgAttemptLog(db)
        self.account_data = PgAccountData(db)
