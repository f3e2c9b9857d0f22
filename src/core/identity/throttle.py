"""Attempt throttles for the doors anyone can knock on: sign-in, sign-up, password-reset mails.

Each attempt is counted *before* the slow part (hashing, mailing) under a held row per key, so concurrent
attempts cannot all pass one check. Sign-in is limited three ways, so that guessing is slow and locking a
real user out is not possible:
- per account *and* address: a few tries, then that address waits for the window to pass;
- per address, over all accounts: a password-spraying address stops;
- per account, over all addresses: no hard lock (anyone could trigger it), but from a few attempts on,
  each further one waits twice as long as the one before, up to a minute; a password reset unlocks.
A successful sign-in takes its attempt back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from src.core.identity.config import IdentityConfig
from src.ports.identity import AttemptCount, ClientInfo, IdentityUnitOfWork, TooManyAttempts


@dataclass(frozen=True, slots=True)
class Rule:
    limit: int  # attempts per window; past it, the rest of the window is refused
    window: timedelta
    slow_after: int | None = None  # from this many attempts on, each waits 2^(n - slow_after) s more
    max_delay: timedelta = timedelta(minutes=1)
    message: str = "too many attempts; try again later"


def account_key(email: str) -> str:
    return f"account:{email}"


def pair_prefix(email: str) -> str:
    return f"pair:{email}|"


def pair_key(email: str, client: ClientInfo) -> str:
    return pair_prefix(email) + (client.ip or "unknown")


def address_key(client: ClientInfo, door: str = "sign-in") -> str:
    return f"{door}:ip:{client.ip or 'unknown'}"


def sign_in_rules(config: IdentityConfig, email: str, client: ClientInfo) -> dict[str, Rule]:
    window = config.throttle_window
    return {
        pair_key(email, client): Rule(config.max_failures_per_account, window,
                                      message="too many failed sign-ins for this account from here; try later"),
        address_key(client): Rule(config.max_failures_per_ip, window,
                                  message="too many failed sign-ins from this address; try again later"),
        account_key(email): Rule(10_000, window, slow_after=config.max_failures_per_account,
                                 max_delay=config.max_account_delay,
                                 message="this account is receiving many sign-in attempts; try again shortly"),
    }


def _refusal(count: AttemptCount, rule: Rule, now: datetime) -> float | None:
    """Seconds to wait, or None when this attempt may go ahead."""
    if count.attempts >= rule.limit:
        started = count.window_started_at or now
        return (started + rule.window - now).total_seconds()
    if rule.slow_after is not None and count.attempts >= rule.slow_after and count.last_attempt_at:
        delay = min(rule.max_delay, timedelta(seconds=2 ** (count.attempts - rule.slow_after)))
        wait = (count.last_attempt_at + delay - now).total_seconds()
        if wait > 0:
            return wait
    return None


async def take_attempt(uow: IdentityUnitOfWork, rules: dict[str, Rule], now: datetime) -> None:
    """Counts one attempt under every key, or raises TooManyAttempts and counts none. The caller commits.
    A rule with a limit of 0 is off."""
    rules = {key: rule for key, rule in rules.items() if rule.limit > 0}
    if not rules:
        return
    held = await uow.attempts.hold(sorted(rules))
    counted = []
    for key, rule in rules.items():
        count = held[key]
        if count.window_started_at is None or now - count.window_started_at >= rule.window:
            count = AttemptCount(key, 0, now, count.last_attempt_at)
        wait = _refusal(count, rule, now)
        if wait is not None:
            raise TooManyAttempts(rule.message, max(1, int(wait + 0.999)))
        counted.append(replace(count, attempts=count.attempts + 1, last_attempt_at=now))
    await uow.attempts.save(counted)


async def give_back(uow: IdentityUnitOfWork, keys: list[str]) -> None:
    """A successful attempt: it does not count against these keys."""
    held = await uow.attempts.hold(sorted(keys))
    await uow.attempts.save([replace(count, attempts=max(0, count.attempts - 1)) for count in held.values()])
