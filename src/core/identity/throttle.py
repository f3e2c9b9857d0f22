"""Failed sign-in throttling, per account and per client address, over a sliding window."""

from __future__ import annotations

from datetime import datetime

from src.core.identity.config import IdentityConfig
from src.ports.identity import ClientInfo, IdentityUnitOfWork, TooManyAttempts


def account_key(email: str) -> str:
    return f"account:{email}"


def address_key(client: ClientInfo) -> str:
    return f"ip:{client.ip or 'unknown'}"


async def check_not_throttled(uow: IdentityUnitOfWork, config: IdentityConfig, now: datetime, email: str,
                              client: ClientInfo) -> None:
    since = now - config.throttle_window
    retry_after = int(config.throttle_window.total_seconds())
    if await uow.auth_failures.count_since(account_key(email), since) >= config.max_failures_per_account:
        raise TooManyAttempts("too many failed sign-ins for this account; try again later", retry_after)
    if await uow.auth_failures.count_since(address_key(client), since) >= config.max_failures_per_ip:
        raise TooManyAttempts("too many failed sign-ins from this address; try again later", retry_after)
