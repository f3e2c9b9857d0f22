"""Edge as the driving adapters see it: the rate limits every entry point applies.
src/wiring provides every member; mypy checks that it does."""

from __future__ import annotations

from typing import Protocol

from src.core.edge.rate_limits import Admission


class EdgeServices(Protocol):
    def admission(self) -> Admission: ...
