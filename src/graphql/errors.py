"""Typed errors: expected failures are part of the schema, so clients branch on `__typename`/`code`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry

from src.ports.shared import DomainError, InvalidInput, NotFound, StorageUnavailable


@strawberry.interface
class Error:
    code: str
    message: str


@strawberry.type
class NotFoundError(Error):
    pass


@strawberry.type
class InvalidInputError(Error):
    field: str | None = None


@strawberry.type
class UnavailableError(Error):
    pass


def to_graphql_error(exc: DomainError) -> Error:
    if isinstance(exc, InvalidInput):
        return InvalidInputError(code=exc.code, message=str(exc), field=exc.field)
    if isinstance(exc, NotFound):
        return NotFoundError(code=exc.code, message=str(exc))
    if isinstance(exc, StorageUnavailable):
        return UnavailableError(code=exc.code, message="a service Keel needs is unavailable; try again shortly")
    return InvalidInputError(code=exc.code, message=str(exc))


Record = TypeVar("Record")
Answer = TypeVar("Answer")


async def answer(call: Callable[[], Awaitable[Record]], present: Callable[[Record], Answer]) -> Answer | Error:
    """Run a use case and present its record, or its expected failure as a typed error."""
    try:
        return present(await call())
    except DomainError as exc:
        return to_graphql_error(exc)
