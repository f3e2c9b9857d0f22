"""The root schema: each domain's Query, Mutation and Subscription merged into one, every root field guarded."""

from __future__ import annotations

import strawberry
from strawberry.extensions import ValidationCache
from strawberry.file_uploads import Upload
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from graphql import GraphQLError
from src.graphql.account_data import AccountDataMutation, AccountDataQuery
from src.graphql.admission import Admit
from src.graphql.billing import BillingMutation, BillingQuery
from src.graphql.billing_types import LONG_SCALAR, Long
from src.graphql.conversation import ConversationMutation, ConversationQuery, ConversationSubscription
from src.graphql.errors import ALL_ERRORS
from src.graphql.feedback import FeedbackMutation, FeedbackQuery
from src.graphql.graph import GraphQuery
from src.graphql.identity import IdentityMutation, IdentityQuery
from src.graphql.knowledge import KnowledgeMutation, KnowledgeQuery, KnowledgeSubscription
from src.graphql.limits import GraphQLLimits, InputGuard, TolerantParserCache, limit_extensions
from src.graphql.masking import KeelSchema, ShapeErrors
from src.graphql.metrics import GraphQLMetrics
from src.graphql.permissions import unguarded_root_fields
from src.graphql.system import SystemMutation, SystemQuery, SystemSubscription

Query = merge_types("Query", (IdentityQuery, AccountDataQuery, KnowledgeQuery, GraphQuery, ConversationQuery,
                             FeedbackQuery, BillingQuery, SystemQuery))
Mutation = merge_types("Mutation", (IdentityMutation, AccountDataMutation, KnowledgeMutation, ConversationMutation,
                                    FeedbackMutation, BillingMutation, SystemMutation))
Subscription = merge_types("Subscription", (KnowledgeSubscription, ConversationSubscription, SystemSubscription))


def _file_only(value: object) -> object:
    """A multipart file part; a string or number in its place is the client's mistake, named as such."""
    if not hasattr(value, "read"):
        raise GraphQLError("an Upload must be a file sent as a part of a multipart request")
    return value


UPLOAD_SCALAR = strawberry.scalar(name="Upload", description="A file sent as a part of a multipart request.",
                                  serialize=lambda value: value, parse_value=_file_only)


def build_schema(limits: GraphQLLimits | None = None, metrics: GraphQLMetrics | None = None) -> strawberry.Schema:
    limits = limits or GraphQLLimits()
    measured = [metrics.extension] if metrics else []
    # clients send the same few documents over and over: parse and validate each once (Strawberry keeps both
    # caches per process, shared by every request)
    schema = KeelSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=ALL_ERRORS,
        config=StrawberryConfig(scalar_map={Long: LONG_SCALAR, Upload: UPLOAD_SCALAR},
                                disable_field_suggestions=not limits.suggestions),
        extensions=[*limit_extensions(limits), ShapeErrors, lambda: TolerantParserCache(maxsize=1000),
                    lambda: ValidationCache(maxsize=1000), lambda: InputGuard(limits.max_cost), Admit, *measured],
    )
    if metrics:
        names = schema.config.name_converter
        metrics.root_fields = {names.get_graphql_name(field) for root in (Query, Mutation, Subscription)
                               for field in root.__strawberry_definition__.fields}
    missing = unguarded_root_fields(schema)
    if missing:
        raise RuntimeError(f"root fields without a permission guard: {', '.join(missing)}")
    return schema
