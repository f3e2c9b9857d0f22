"""The root schema: each domain's Query, Mutation and Subscription merged into one."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaskErrors
from strawberry.tools import merge_types

from src.graphql.errors import InvalidInputError, NotFoundError, UnavailableError
from src.graphql.system import SystemMutation, SystemQuery, SystemSubscription

Query = merge_types("Query", (SystemQuery,))
Mutation = merge_types("Mutation", (SystemMutation,))
Subscription = merge_types("Subscription", (SystemSubscription,))


def _is_expected(error) -> bool:
    # Validation and syntax errors are the client's to see; anything raised by our code is masked.
    return getattr(error, "original_error", None) is None


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[NotFoundError, InvalidInputError, UnavailableError],
        extensions=[lambda: MaskErrors(should_mask_error=lambda error: not _is_expected(error))],
    )
