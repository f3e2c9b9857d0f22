"""Email/password accounts: sign up, sign in, change password."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace

from src.core.identity.audit_trail import audit
from src.core.identity.config import IdentityConfig
from src.core.identity.sessions import AuthTokens, SessionIssuer
from src.core.identity.throttle import (
    Rule,
    account_key,
    address_key,
    give_back,
    pair_key,
    sign_in_rules,
    take_attempt,
)
from src.core.identity.values import check_name, check_password, normalise_email
from src.core.identity.workspaces import create_workspace_for
from src.ports.identity import (
    ClientInfo,
    EmailTaken,
    IdentityUnitOfWork,
    InvalidCredentials,
    PasswordHasher,
    Principal,
    Unauthenticated,
    User,
)
from src.ports.shared import Clock, InvalidInput

# Verified against when the account does not exist, so both paths cost one argon2 verification (hashed
# once per hasher, not per attempt: a hash on that path would itself make unknown accounts slower).
_DUMMY_PASSWORD = "keel-timing-equaliser"
_dummy_hashes: dict[int, str] = {}


async def _dummy_hash(hasher: PasswordHasher) -> str:
    if id(hasher) not in _dummy_hashes:
        _dummy_hashes[id(hasher)] = await hasher.hash(_DUMMY_PASSWORD)
    return _dummy_hashes[id(hasher)]


class SignUp:
    """- Normalised email, checked password; a personal workspace owned by the new user; a session.
    - At most `sign_ups_per_ip` per address per hour (counted before the password is hashed)."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], hasher: PasswordHasher, issuer: SessionIssuer,
                 clock: Clock, config: IdentityConfig) -> None:
        self._uow, self._hasher, self._issuer, self._clock, self._config = uow, hasher, issuer, clock, config

    async def execute(self, email: str, password: str, display_name: str, client: ClientInfo) -> AuthTokens:
        email = normalise_email(email)
        check_password(password)
        name = check_name(display_name or email.split("@")[0], field="displayName", limit=100)
        now = self._clock.now()
        rule = Rule(self._config.sign_ups_per_ip, self._config.door_window,
                    message="too many sign-ups from this address; try again later")
        async with self._uow() as uow:
            await take_attempt(uow, {address_key(client, "sign-up"): rule}, now)
            await uow.commit()
        password_hash = await self._hasher.hash(password)
        async with self._uow() as uow:
            if await uow.users.by_email(email) is not None:
                raise EmailTaken("this email cannot be used to sign up; sign in or reset the password instead")
            user = User(uuid.uuid4(), email, now, password_hash=password_hash, display_name=name)
            await uow.users.add(user)  # a concurrent sign-up with the same email fails here (EmailTaken)
            await create_workspace_for(uow, user, f"{name}'s workspace", now)
            await audit(uow, now, "user.signed_up", user.id, client, details={"method": "password"})
            tokens = await self._issuer.start(uow, user, client)
            await uow.commit()
        return tokens


class SignIn:
    """- Throttled per account and address, per address, and per account (see `throttle`): the attempt is
      counted before the password is checked, so concurrent guesses cannot all pass one check.
    - Failures are audited; a success takes its attempt back.
    - Rehashes the password when the hasher's parameters changed.
    """

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], hasher: PasswordHasher, issuer: SessionIssuer,
                 clock: Clock, config: IdentityConfig) -> None:
        self._uow, self._hasher, self._issuer, self._clock, self._config = uow, hasher, issuer, clock, config

    async def execute(self, email: str, password: str, client: ClientInfo) -> AuthTokens:
        try:
            email = normalise_email(email)
        except InvalidInput:
            raise InvalidCredentials("wrong email or password") from None
        now = self._clock.now()
        rules = sign_in_rules(self._config, email, client)
        async with self._uow() as uow:
            await take_attempt(uow, rules, now)
            user = await uow.users.by_email(email)
            await uow.commit()
        stored = user.password_hash if user and user.password_hash else await _dummy_hash(self._hasher)
        matches = await self._hasher.verify(stored, password or "")
        async with self._uow() as uow:
            if user is None or not user.password_hash or not matches:
                await audit(uow, now, "auth.sign_in_failed", user.id if user else None, client,
                            subject=email, details={"method": "password"})
                await uow.commit()
                raise InvalidCredentials("wrong email or password")
            if self._hasher.needs_rehash(user.password_hash):
                user = _with_password(user, await self._hasher.hash(password))
                await uow.users.save(user)
            await give_back(uow, [address_key(client), account_key(email)])
            await uow.attempts.clear([pair_key(email, client)])
            await audit(uow, now, "auth.signed_in", user.id, client, details={"method": "password"})
            tokens = await self._issuer.start(uow, user, client)
            await uow.commit()
        return tokens


class ChangePassword:
    """- Needs the current password; every other session of the user is signed out."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], hasher: PasswordHasher, clock: Clock) -> None:
        self._uow, self._hasher, self._clock = uow, hasher, clock

    async def execute(self, principal: Principal | None, current: str, new: str, client: ClientInfo) -> None:
        if principal is None or principal.session_id is None:
            raise Unauthenticated("changing the password needs a signed-in session")
        check_password(new, field="newPassword")
        now = self._clock.now()
        async with self._uow() as uow:
            user = await uow.users.get(principal.user_id)
        if user is None:
            raise Unauthenticated("sign in first")
        # no connection is held while hashing
        if user.password_hash and not await self._hasher.verify(user.password_hash, current or ""):
            raise InvalidCredentials("the current password is wrong")
        password_hash = await self._hasher.hash(new)
        async with self._uow() as uow:
            await uow.users.save(_with_password(user, password_hash))
            await uow.sessions.revoke_all_of_user(user.id, now, keep=principal.session_id)
            await audit(uow, now, "auth.password_changed", user.id, client)
            await uow.commit()


def _with_password(user: User, password_hash: str) -> User:
    return replace(user, password_hash=password_hash)
