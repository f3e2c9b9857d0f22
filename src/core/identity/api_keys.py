"""API keys for server-to-server use: one workspace, scoped, shown once, stored hashed, revocable."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from uuid import UUID

from src.core.identity.audit_trail import audit
from src.core.identity.authorize import require, signed_in
from src.core.identity.policy import grantable_scopes
from src.core.identity.values import check_name, hash_secret, new_secret
from src.ports.identity import (
    ApiKey,
    ClientInfo,
    Forbidden,
    IdentityUnitOfWork,
    Permission,
    Principal,
    Unauthenticated,
)
from src.ports.shared import Clock, InvalidInput, NotFound

KEY_PREFIX = "keel"
TOUCH_EVERY = timedelta(minutes=1)  # last-used time is kept to the minute, not written on every call


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """A key's own limits; None = the defaults (the rate for keys, the workspace's budget)."""

    requests_per_minute: int | None = None
    daily_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.requests_per_minute is not None and not 1 <= self.requests_per_minute <= 1_000_000:
            raise InvalidInput("requestsPerMinute must be between 1 and 1000000", field="requestsPerMinute")
        if self.daily_tokens is not None and not 1 <= self.daily_tokens <= 10**12:
            raise InvalidInput("dailyTokens must be between 1 and 10^12", field="dailyTokens")


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    key: ApiKey
    secret: str  # shown once, never stored


def _parse_scopes(raw: list[str]) -> frozenset[Permission]:
    try:
        scopes = frozenset(Permission(scope) for scope in raw)
    except ValueError:
        raise InvalidInput("unknown scope; see the Permission enum for valid ones", field="scopes") from None
    if not scopes:
        raise InvalidInput("an API key needs at least one scope", field="scopes")
    return scopes


class CreateApiKey:
    """- Only a signed-in user (not another key) who may manage keys in the workspace.
    - Scopes are workspace permissions the creator holds there; never more.
    - It may carry its own rate limit and daily model budget (enforced at the edge and by the ledger).
    """

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def execute(self, principal: Principal | None, workspace_id: UUID, name: str, scopes: list[str],
                      client: ClientInfo, limits: KeyLimits = KeyLimits()) -> CreatedApiKey:
        principal = signed_in(principal)
        wanted = _parse_scopes(scopes)
        name = check_name(name, limit=100)
        now = self._clock.now()
        async with self._uow() as uow:
            role = await require(uow, principal, Permission.API_KEYS_MANAGE, workspace_id)
            if principal.api_key_id is not None:
                raise Forbidden("API keys cannot create API keys")
            if role is None or not wanted <= grantable_scopes(role):
                raise InvalidInput("a key cannot have scopes you do not have in this workspace", field="scopes")
            prefix = secrets.token_hex(4)
            secret = f"{KEY_PREFIX}_{prefix}_{new_secret()}"
            key = ApiKey(uuid.uuid4(), workspace_id, principal.user_id, name, f"{KEY_PREFIX}_{prefix}",
                         hash_secret(secret), wanted, now, requests_per_minute=limits.requests_per_minute,
                         daily_tokens=limits.daily_tokens)
            await uow.api_keys.add(key)
            await audit(uow, now, "api_key.created", principal.user_id, client, subject=str(key.id),
                        details={"workspace_id": str(workspace_id), "scopes": sorted(wanted)})
            await uow.commit()
        return CreatedApiKey(key, secret)


class RevokeApiKey:
    def __init__(self, uow: Callable[[], IdentityUnitOfWork], clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def execute(self, principal: Principal | None, key_id: UUID, client: ClientInfo) -> ApiKey:
        principal = signed_in(principal)
        now = self._clock.now()
        async with self._uow() as uow:
            key = await uow.api_keys.get(key_id)
            try:
                await require(uow, principal, Permission.API_KEYS_MANAGE, key.workspace_id if key else None)
            except Forbidden:
                raise NotFound("no such API key") from None  # the same answer whether it exists or not
            assert key is not None  # a missing key has no workspace: refused above
            if key.revoked_at is None:
                key = replace(key, revoked_at=now)
                await uow.api_keys.save(key)
                await audit(uow, now, "api_key.revoked", principal.user_id, client, subject=str(key.id),
                            details={"workspace_id": str(key.workspace_id)})
                await uow.commit()
        return key


class ListApiKeys:
    def __init__(self, uow: Callable[[], IdentityUnitOfWork]) -> None:
        self._uow = uow

    async def execute(self, principal: Principal | None, workspace_id: UUID) -> list[ApiKey]:
        principal = signed_in(principal)
        async with self._uow() as uow:
            await require(uow, principal, Permission.API_KEYS_MANAGE, workspace_id)
            return await uow.api_keys.of_workspace(workspace_id)


class AuthenticateApiKey:
    """Raw key -> Principal acting for the key's workspace with the key's scopes."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def execute(self, raw_key: str) -> Principal:
        if not raw_key.startswith(f"{KEY_PREFIX}_"):
            raise Unauthenticated("this API key is not valid")
        now = self._clock.now()
        async with self._uow() as uow:
            key = await uow.api_keys.by_hash(hash_secret(raw_key))
            user = await uow.users.get(key.created_by) if key else None
            if key is None or key.revoked_at is not None or user is None:
                raise Unauthenticated("this API key is not valid or was revoked")
            if key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY:
                await uow.api_keys.touch(key.id, now)
                await uow.commit()
        return Principal(user_id=user.id, role=user.role, api_key_id=key.id, key_workspace_id=key.workspace_id,
                         key_scopes=key.scopes, key_requests_per_minute=key.requests_per_minute,
                         key_daily_tokens=key.daily_tokens)
