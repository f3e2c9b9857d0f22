"""Sessions: issue tokens, rotate refresh tokens (reuse revokes the family), sign out, authenticate."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from src.core.identity.audit_trail import audit
from src.core.identity.config import IdentityConfig
from src.core.identity.values import hash_secret, new_secret
from src.ports.identity import (
    AccessClaims,
    AccessTokenCodec,
    ClientInfo,
    IdentityUnitOfWork,
    InvalidToken,
    Principal,
    RefreshToken,
    Session,
    Unauthenticated,
    User,
)
from src.ports.shared import Clock


@dataclass(frozen=True, slots=True)
class AuthTokens:
    user: User
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    session_id: uuid.UUID


class SessionIssuer:
    """Starts a session inside the caller's transaction; the caller commits."""

    def __init__(self, codec: AccessTokenCodec, clock: Clock, config: IdentityConfig) -> None:
        self._codec = codec
        self._clock = clock
        self._config = config

    async def start(self, uow: IdentityUnitOfWork, user: User, client: ClientInfo) -> AuthTokens:
        now = self._clock.now()
        session = Session(uuid.uuid4(), user.id, now, now + self._config.refresh_ttl,
                          client_ip=client.ip, user_agent=client.user_agent[:300])
        await uow.sessions.add(session)
        return await self.continue_(uow, session, user)

    async def continue_(self, uow: IdentityUnitOfWork, session: Session, user: User) -> AuthTokens:
        now = self._clock.now()
        refresh = new_secret()
        await uow.sessions.add_token(RefreshToken(uuid.uuid4(), session.id, hash_secret(refresh), now))
        expires = now + self._config.access_ttl
        access = await self._codec.encode(AccessClaims(user.id, session.id, user.role, now, expires))
        return AuthTokens(user, access, expires, refresh, session.expires_at, session.id)


class RefreshSession:
    """- A valid refresh token is used once: it is marked rotated and a new one is issued in the same family.
    - Presenting an already-rotated token means it was copied: the whole family (session) is revoked.
    """

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], issuer: SessionIssuer, clock: Clock) -> None:
        self._uow = uow
        self._issuer = issuer
        self._clock = clock

    async def execute(self, refresh_token: str, client: ClientInfo) -> AuthTokens:
        now = self._clock.now()
        async with self._uow() as uow:
            token = await uow.sessions.token_by_hash(hash_secret(refresh_token or ""), for_update=True)
            if token is None:
                raise InvalidToken("this refresh token is not valid; sign in again")
            session = await uow.sessions.get(token.session_id)
            if token.rotated_at is not None:
                if session and session.revoked_at is None:
                    await uow.sessions.revoke(session.id, now)
                    await audit(uow, now, "session.reuse_detected", session.user_id if session else None,
                                client, subject=str(token.session_id))
                    await uow.commit()
                raise InvalidToken("this refresh token was already used; the session is revoked, sign in again")
            if session is None or session.revoked_at is not None or session.expires_at <= now:
                raise InvalidToken("this session has ended; sign in again")
            user = await uow.users.get(session.user_id)
            if user is None:
                raise InvalidToken("this session has ended; sign in again")
            await uow.sessions.mark_rotated(token.id, now)
            tokens = await self._issuer.continue_(uow, session, user)
            await uow.commit()
        return tokens


class SignOut:
    def __init__(self, uow: Callable[[], IdentityUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, principal: Principal | None, client: ClientInfo, *, everywhere: bool = False) -> int:
        if principal is None or principal.session_id is None:
            raise Unauthenticated("signing out needs a signed-in session")
        now = self._clock.now()
        async with self._uow() as uow:
            if everywhere:
                count = await uow.sessions.revoke_all_of_user(principal.user_id, now)
            else:
                await uow.sessions.revoke(principal.session_id, now)
                count = 1
            await audit(uow, now, "auth.signed_out", principal.user_id, client,
                        details={"everywhere": everywhere, "sessions": count})
            await uow.commit()
        return count


class Authenticate:
    """Bearer access token -> Principal. The session and the user are read each time, so a sign-out or
    a role change takes effect on the next request, not when the token expires."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], codec: AccessTokenCodec, clock: Clock) -> None:
        self._uow = uow
        self._codec = codec
        self._clock = clock

    async def execute(self, access_token: str) -> Principal:
        try:
            claims = await self._codec.decode(access_token)
        except InvalidToken as exc:
            raise Unauthenticated(str(exc)) from None
        async with self._uow() as uow:
            found = await uow.sessions.get_with_user(claims.session_id)
        if found is None:
            raise Unauthenticated("this session has ended; sign in again")
        session, user = found
        if session.revoked_at is not None or user.id != claims.user_id:
            raise Unauthenticated("this session has ended; sign in again")
        return Principal(user_id=user.id, role=user.role, session_id=session.id)


class FindEndedCredentials:
    """- Of the sessions and API keys that hold connections open (websockets), those that no longer authenticate
      (signed out, revoked, the user deleted): their connections are to close. Two reads for any number."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork]) -> None:
        self._uow = uow

    async def execute(self, session_ids: set[UUID], key_ids: set[UUID]) -> set[UUID]:
        active: set[UUID] = set()
        async with self._uow() as uow:
            if session_ids:
                active |= await uow.sessions.active_among(sorted(session_ids))
            if key_ids:
                active |= await uow.api_keys.active_among(sorted(key_ids))
        return (session_ids | key_ids) - active
