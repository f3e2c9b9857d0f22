"""Password reset by a mailed one-time token."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace

from src.core.identity.audit_trail import audit
from src.core.identity.config import IdentityConfig
from src.core.identity.throttle import Rule, account_key, address_key, pair_prefix, take_attempt
from src.core.identity.values import check_password, hash_secret, new_secret, normalise_email
from src.ports.identity import (
    ClientInfo,
    Email,
    EmailSender,
    IdentityUnitOfWork,
    InvalidToken,
    OneTimeToken,
    PasswordHasher,
    TooManyAttempts,
)
from src.ports.shared import Clock, InvalidInput

RESET = "password_reset"


class RequestPasswordReset:
    """- Always answers the same, whether the account exists or not (no account discovery).
    - At most `max_resets_per_account` mails per account per throttle window, `resets_per_ip` per address
      per hour.
    - The mail goes out after the token is committed.
    """

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], mailer: EmailSender, clock: Clock,
                 config: IdentityConfig) -> None:
        self._uow, self._mailer, self._clock, self._config = uow, mailer, clock, config

    async def execute(self, email: str, client: ClientInfo) -> None:
        try:
            email = normalise_email(email)
        except InvalidInput:
            return
        now = self._clock.now()
        secret = new_secret()
        config = self._config
        async with self._uow() as uow:
            # per address: answered as a refusal, since it reveals nothing about any account
            await take_attempt(uow, {address_key(client, "reset"): Rule(
                config.resets_per_ip, config.door_window, message="too many reset requests from this address; "
                                                                  "try again later")}, now)
            await uow.commit()
        async with self._uow() as uow:
            user = await uow.users.by_email(email)
            if user is None:
                return
            try:  # per account: silently, so the answer stays the same whether the account exists or not
                await take_attempt(uow, {f"reset:{email}": Rule(config.max_resets_per_account,
                                                                config.throttle_window)}, now)
            except TooManyAttempts:
                return
            await uow.one_time_tokens.add(
                OneTimeToken(uuid.uuid4(), user.id, RESET, hash_secret(secret), now + self._config.reset_ttl)
            )
            await audit(uow, now, "auth.password_reset_requested", user.id, client)
            await uow.commit()
        minutes = int(self._config.reset_ttl.total_seconds() // 60)
        await self._mailer.send(Email(
            to=email,
            subject="Reset your Keel password",
            body=f"Use this code to choose a new password within {minutes} minutes:\n\n{secret}\n\n"
                 "If you did not ask for it, ignore this mail; your password stays as it is.",
        ))


class ResetPassword:
    """- The token works once and before it expires; every session of the user is signed out."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], hasher: PasswordHasher, clock: Clock) -> None:
        self._uow, self._hasher, self._clock = uow, hasher, clock

    async def execute(self, token: str, new_password: str, client: ClientInfo) -> None:
        check_password(new_password, field="newPassword")
        now = self._clock.now()
        password_hash = await self._hasher.hash(new_password)  # before the transaction: no connection held
        async with self._uow() as uow:
            stored = await uow.one_time_tokens.by_hash(hash_secret(token or ""), for_update=True)
            if stored is None or stored.purpose != RESET or stored.used_at is not None or stored.expires_at <= now:
                raise InvalidToken("this reset code is not valid any more; ask for a new one")
            user = await uow.users.get(stored.user_id)
            if user is None:
                raise InvalidToken("this reset code is not valid any more; ask for a new one")
            await uow.users.save(replace(user, password_hash=password_hash))
            await uow.one_time_tokens.save(replace(stored, used_at=now))
            await uow.sessions.revoke_all_of_user(user.id, now)
            # whoever can read the mail owns the account: earlier sign-in attempts stop slowing it down
            await uow.attempts.clear([account_key(user.email)], prefixes=[pair_prefix(user.email)])
            await audit(uow, now, "auth.password_reset", user.id, client)
            await uow.commit()
