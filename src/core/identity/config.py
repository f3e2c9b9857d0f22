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
    max_failures_per_account: int = 5
    max_failures_per_ip: int = 20
    max_resets_per_account: int = 3
    public_url: str = "http://127.0.0.1:8000"
