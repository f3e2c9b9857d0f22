"""Typed errors: expected failures are part of the schema, so clients branch on `__typename`/`code`."""

from __future__ import annotations

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
