"""The root schema: each domain's Query, Mutation and Subscription merged into one, every root field guarded."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaskErrors, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from src.graphql.billing import BillingMutation, BillingQuery
from src.graphql.billing_types import LONG_SCALAR, Long
from src.graphql.conversation import ConversationMutation, ConversationQuery, ConversationSubscription
from src.graphql.errors import ALL_ERRORS
from src.graphql.graph import GraphQuery
from src.graphql.identity import IdentityMutation, IdentityQuery
from src.graphql.knowledge import KnowledgeMutation, KnowledgeQuery, KnowledgeSubscription
from src.graphql.permissions import AccessDenied, unguarded_root_fields
from src.graphql.system import SystemMutation, SystemQuery, SystemSubscription

Query = merge_types("Query", (IdentityQuery, KnowledgeQuery, GraphQuery, ConversationQuery, BillingQuery,
                             SystemQuery))
Mutation = merge_types("Mutation", (IdentityMutation, KnowledgeMutation, ConversationMutation, BillingMutation,
                                    SystemMutation))
Subscription = merge_types("Subscription", (KnowledgeSubscription, ConversationSubscription, SystemSubscription))


def _should_mask(error) -> bool:
    # Validation/syntax errors and access denials are the client's to see; anything else our code raised
    # is masked (and logged by Strawberry with its traceback).
    original = getattr(error, "original_error", None)
    return original is not None and not isinstance(original, AccessDenied)


def build_schema() -> strawberry.Schema:
    # clients send the same few documents over and over: parse and validate each once (one cache for all
    # requests, so each request gets the same instance)
    parser, validation = ParserCache(maxsize=1000), ValidationCache(maxsize=1000)
    schema = strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=ALL_ERRORS,
        config=StrawberryConfig(scalar_map={Long: LONG_SCALAR}),
        extensions=[lambda: MaskErrors(should_mask_error=_should_mask), lambda: parser, lambda: validation],
    )
    missing = unguarded_root_fields(schema)
    if missing:
        raise RuntimeError(f"root fields without a permission guard: {', '.join(missing)}")
    return schema
