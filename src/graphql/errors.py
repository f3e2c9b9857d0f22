"""Typed errors: expected failures are part of the schema, so clients branch on `__typename`/`code`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry

from src.ports.billing import BillingNotConfigured, PaymentProviderUnavailable, QuotaExceeded
from src.ports.identity import Forbidden, TooManyAttempts
from src.ports.knowledge import EmbeddingUnavailable
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


@strawberry.type(description="Sign-in, token and credential failures: invalid_credentials, email_taken, "
                             "invalid_token, unauthenticated.")
class AuthError(Error):
    pass


@strawberry.type
class ForbiddenError(Error):
    pass


@strawberry.type
class TooManyAttemptsError(Error):
    retry_after_seconds: int


@strawberry.type(description="A limit of the workspace's plan is reached; `limit` names it.")
class QuotaExceededError(Error):
    limit: str


ALL_ERRORS = [NotFoundError, InvalidInputError, UnavailableError, AuthError, ForbiddenError, TooManyAttemptsError,
              QuotaExceededError]


def to_graphql_error(exc: DomainError) -> Error:
    if isinstance(exc, InvalidInput):
        return InvalidInputError(code=exc.code, message=str(exc), field=exc.field)
    if isinstance(exc, NotFound):
        return NotFoundError(code=exc.code, message=str(exc))
    if isinstance(exc, Forbidden):
        return ForbiddenError(code=exc.code, message=str(exc))
    if isinstance(exc, TooManyAttempts):
        return TooManyAttemptsError(code=exc.code, message=str(exc), retry_after_seconds=exc.retry_after_seconds)
    if isinstance(exc, StorageUnavailable):
        return UnavailableError(code=exc.code, message="a service Keel needs is unavailable; try again shortly")
    if isinstance(exc, EmbeddingUnavailable | PaymentProviderUnavailable | BillingNotConfigured):
        return UnavailableError(code=exc.code, message=str(exc))
    if isinstance(exc, QuotaExceeded):
        return QuotaExceededError(code=exc.code, message=str(exc), limit=exc.limit)
    return AuthError(code=exc.code, message=str(exc))


Record = TypeVar("Record")
Answer = TypeVar("Answer")


async def answer(call: Callable[[], Awaitable[Record]], present: Callable[[Record], Answer]) -> Answer | Error:
    """Run a use case and present its record, or its expected failure as a typed error."""
    try:
        return present(await call())
    except DomainError as exc:
        return to_graphql_error(exc)
