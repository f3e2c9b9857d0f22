"""Identity settings the core needs (lifetimes and limits), passed in by the container."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=30)
    reset_ttl: timedelta = timedelta(minutes=30)
    oauth_state_ttl: timedelta = timedelta(minutes=10)
    throttle_window: timedelta = timedelta(minutes=15)
    max_failures_per_account: int = 5  # per account and address; then the account's attempts slow down
    max_failures_per_ip: int = 20
    max_account_delay: timedelta = timedelta(minutes=1)
    max_resets_per_account: int = 3
    door_window: timedelta = timedelta(hours=1)  # sign-ups and reset mails per address
    sign_ups_per_ip: int = 10
    resets_per_ip: int = 10
    public_url: str = "http://127.0.0.1:8000"
