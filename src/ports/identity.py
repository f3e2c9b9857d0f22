"""Identity ports: accounts, sessions, workspaces, API keys, OAuth, audit; records and Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from src.ports.shared import DomainError, UnitOfWork


# -- vocabulary ---------------------------------------------------------------------------------------
class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class WorkspaceRole(StrEnum):
    OWNER = "owner"
    MEMBER = "member"


class Permission(StrEnum):
    """What a caller may do. Workspace permissions need a membership; the rest are global."""

    WORKSPACE_READ = "workspace:read"
    WORKSPACE_MANAGE = "workspace:manage"  # rename, delete, members
    CONTENT_READ = "content:read"  # documents, search, conversations
    CONTENT_WRITE = "content:write"
    API_KEYS_MANAGE = "api_keys:manage"
    BILLING_MANAGE = "billing:manage"
    ACCOUNT = "account"  # one's own account and sessions
    WORKSPACE_CREATE = "workspace:create"
    AUDIT_READ = "audit:read"
    USERS_MANAGE = "users:manage"
    SYSTEM_OPERATE = "system:operate"  # worker probes and other operator tools
    BILLING_ADMIN = "billing:admin"  # any workspace's billing state, webhook log, reconciliation


WORKSPACE_PERMISSIONS = frozenset(
    {
        Permission.WORKSPACE_READ,
        Permission.WORKSPACE_MANAGE,
        Permission.CONTENT_READ,
        Permission.CONTENT_WRITE,
        Permission.API_KEYS_MANAGE,
        Permission.BILLING_MANAGE,
    }
)


# -- errors -------------------------------------------------------------------------------------------
class Unauthenticated(DomainError):
    code = "unauthenticated"


class Forbidden(DomainError):
    code = "forbidden"


class InvalidCredentials(DomainError):
    code = "invalid_credentials"


class EmailTaken(DomainError):
    code = "email_taken"


class TooManyAttempts(DomainError):
    code = "too_many_attempts"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class InvalidToken(DomainError):
    code = "invalid_token"


# -- records ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
    created_at: datetime
    password_hash: str | None = None
    role: Role = Role.USER
    email_verified: bool = False
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class Workspace:
    id: UUID
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Membership:
    workspace_id: UUID
    user_id: UUID
    role: WorkspaceRole
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    """A refresh-token family: every rotation stays in it; revoking it signs that device out."""

    id: UUID
    user_id: UUID
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    client_ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: UUID
    session_id: UUID
    token_hash: str
    created_at: datetime
    rotated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    workspace_id: UUID
    created_by: UUID
    name: str
    prefix: str
    key_hash: str
    scopes: frozenset[Permission]
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    requests_per_minute: int | None = None  # its own rate limit; None = the default for keys
    daily_tokens: int | None = None  # its own daily model budget; None = only the workspace's


@dataclass(frozen=True, slots=True)
class OneTimeToken:
    """Password reset tokens (and anything else mailed once): stored hashed, used once."""

    id: UUID
    user_id: UUID
    purpose: str
    token_hash: str
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OAuthState:
    state_hash: str
    provider: str
    code_verifier: str
    nonce: str
    redirect_uri: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OAuthProfile:
    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str = ""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: UUID
    at: datetime
    action: str
    actor_id: UUID | None = None
    subject: str = ""
    client_ip: str = ""
    user_agent: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: UUID
    session_id: UUID
    role: Role
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a signed-in user (session) or an API key acting for one workspace."""

    user_id: UUID
    role: Role
    session_id: UUID | None = None
    api_key_id: UUID | None = None
    key_workspace_id: UUID | None = None
    key_scopes: frozenset[Permission] | None = None
    key_requests_per_minute: int | None = None  # the key's own rate limit (None: the default)
    key_daily_tokens: int | None = None  # the key's own daily model budget (None: only the workspace's)


@dataclass(frozen=True, slots=True)
class AttemptCount:
    """Attempts under one key in the window that started at `window_started_at`."""

    key: str
    attempts: int = 0
    window_started_at: datetime | None = None
    last_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str = ""
    user_agent: str = ""


# -- driven ports -------------------------------------------------------------------------------------
@runtime_checkable
class AccessPolicy(Protocol):
    """The one decision on who may do what, asked by every domain's use cases (identity answers it), so a
    GraphQL field, a REST route, the CLI and a worker acting for someone all get the same answer."""

    async def require(self, caller: Principal | None, permission: Permission,
                      workspace_id: UUID | None = None) -> Principal:
        """The caller, when allowed; raises Unauthenticated (no caller) or Forbidden (not allowed, or no such
        workspace)."""
        ...



@runtime_checkable
class PasswordHasher(Protocol):
    """Hashing is slow on purpose: both calls run off the event loop, a bounded number at a time."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


@runtime_checkable
class AccessTokenCodec(Protocol):
    async def encode(self, claims: AccessClaims) -> str: ...

    async def decode(self, token: str) -> AccessClaims:
        """The claims of a valid token; raises InvalidToken for anything else."""
        ...


@runtime_checkable
class EmailSender(Protocol):
    async def send(self, email: Email) -> None: ...


@runtime_checkable
class OAuthProvider(Protocol):
    name: str

    async def authorization_url(self, *, state: str, code_verifier: str, nonce: str, redirect_uri: str) -> str: ...

    async def fetch_profile(self, *, code: str, code_verifier: str, nonce: str, redirect_uri: str) -> OAuthProfile:
        """Exchange the code and read who signed in; raises InvalidCredentials when the provider refuses."""
        ...


class UserRepository(Protocol):
    async def add(self, user: User) -> None: ...

    async def get(self, user_id: UUID) -> User | None: ...

    async def by_email(self, email: str) -> User | None: ...

    async def save(self, user: User) -> None: ...

    async def search(self, email_part: str, limit: int) -> list[User]:
        """Users whose email contains `email_part` (any when empty), newest first."""
        ...


class WorkspaceRepository(Protocol):
    async def add(self, workspace: Workspace) -> None: ...

    async def get(self, workspace_id: UUID) -> Workspace | None: ...

    async def hold(self, workspace_id: UUID) -> None:
        """Changes to the workspace's membership wait for each other from here to the end of the transaction."""
        ...

    async def save(self, workspace: Workspace) -> None: ...

    async def delete(self, workspace_id: UUID) -> None: ...

    async def of_user(self, user_id: UUID) -> list[tuple[Workspace, WorkspaceRole]]: ...


class MembershipRepository(Protocol):
    async def add(self, membership: Membership) -> None: ...

    async def get(self, workspace_id: UUID, user_id: UUID) -> Membership | None: ...

    async def remove(self, workspace_id: UUID, user_id: UUID) -> None: ...

    async def of_workspace(self, workspace_id: UUID) -> list[tuple[Membership, User]]: ...


class SessionRepository(Protocol):
    async def add(self, session: Session) -> None: ...

    async def get(self, session_id: UUID) -> Session | None: ...

    async def get_with_user(self, session_id: UUID) -> tuple[Session, User] | None:
        """The session and its user in one round trip (this runs on every authenticated request)."""
        ...

    async def revoke(self, session_id: UUID, at: datetime) -> None: ...

    async def active_among(self, session_ids: list[UUID]) -> set[UUID]:
        """Those of the sessions that are neither revoked nor gone (one round trip for many)."""
        ...

    async def revoke_all_of_user(self, user_id: UUID, at: datetime, keep: UUID | None = None) -> int: ...

    async def add_token(self, token: RefreshToken) -> None: ...

    async def token_by_hash(self, token_hash: str, *, for_update: bool = False) -> RefreshToken | None: ...

    async def mark_rotated(self, token_id: UUID, at: datetime) -> None: ...


class ApiKeyRepository(Protocol):
    async def add(self, key: ApiKey) -> None: ...

    async def get(self, key_id: UUID) -> ApiKey | None: ...

    async def by_hash(self, key_hash: str) -> ApiKey | None: ...

    async def of_workspace(self, workspace_id: UUID) -> list[ApiKey]: ...

    async def save(self, key: ApiKey) -> None: ...

    async def touch(self, key_id: UUID, at: datetime) -> None: ...

    async def active_among(self, key_ids: list[UUID]) -> set[UUID]:
        """Those of the keys that are neither revoked nor gone."""
        ...


class OneTimeTokenRepository(Protocol):
    async def add(self, token: OneTimeToken) -> None: ...

    async def by_hash(self, token_hash: str, *, for_update: bool = False) -> OneTimeToken | None: ...

    async def save(self, token: OneTimeToken) -> None: ...


class OAuthRepository(Protocol):
    async def add_state(self, state: OAuthState) -> None: ...

    async def take_state(self, state_hash: str) -> OAuthState | None:
        """Returns and deletes the state (single use)."""
        ...

    async def user_for(self, provider: str, subject: str) -> UUID | None: ...

    async def link(self, provider: str, subject: str, user_id: UUID, email: str | None) -> None: ...


class AuditLog(Protocol):
    async def record(self, event: AuditEvent) -> None: ...

    async def query(self, *, action: str | None, actor_id: UUID | None, before: datetime | None,
                    limit: int) -> list[AuditEvent]: ...


class AttemptLog(Protocol):
    """Counts of attempts (sign-ins, sign-ups, reset mails) per key, e.g. an account or a client address."""

    async def hold(self, keys: list[str]) -> dict[str, AttemptCount]:
        """The keys' counts (zero for a key never seen), each held until the transaction ends: a concurrent
        attempt under the same key waits, so a check and the count it leads to are one step."""
        ...

    async def save(self, counts: list[AttemptCount]) -> None: ...

    async def clear(self, keys: list[str], prefixes: Sequence[str] = ()) -> None:
        """Forget these keys and every key starting with one of `prefixes`."""
        ...


class AccountData(Protocol):
    """Everything Keel holds about one person, across every module's tables."""

    async def export(self, user_id: UUID) -> dict[str, Any]:
        """JSON-ready: profile, memberships, sessions, API keys, sign-in identities, conversations with their
        messages and ratings, documents uploaded (their metadata), usage per day and model, audit entries."""
        ...

    async def erase(self, user_id: UUID, workspace_ids: list[UUID]) -> dict[str, int]:
        """Deletes the workspaces (with everything in them) and the user with what is theirs alone;
        what stays in shared workspaces loses its link to them. Rows deleted per table."""
        ...


class IdentityUnitOfWork(UnitOfWork, Protocol):
    users: UserRepository
    workspaces: WorkspaceRepository
    memberships: MembershipRepository
    sessions: SessionRepository
    api_keys: ApiKeyRepository
    one_time_tokens: OneTimeTokenRepository
    oauth: OAuthRepository
    audit: AuditLog
    attempts: AttemptLog
    account_data: AccountData
