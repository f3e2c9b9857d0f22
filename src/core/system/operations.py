"""What the metrics endpoint reports beyond the counters the use cases keep: documents by state, the job
queues' depth and age, open reservations. Only for the operator: when a metrics token is configured, a
scrape must present it."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from src.ports.identity import Forbidden
from src.ports.system import Operations, SystemUnitOfWork


class ReadOperations:
    """- With a token configured, a scrape without the same token is Forbidden (compared in constant time).
    - Then one read of the operational counts."""

    def __init__(self, uow: Callable[[], SystemUnitOfWork], token: str) -> None:
        self._uow = uow
        self._token = token

    def check(self, token: str | None) -> None:
        if self._token and not hmac.compare_digest((token or "").encode(), self._token.encode()):
            raise Forbidden("the metrics need the operator's metrics token")

    async def execute(self, token: str | None) -> Operations:
        self.check(token)
        async with self._uow() as uow:
            return await uow.operations.read()
