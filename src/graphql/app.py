"""The Strawberry ASGI app: HTTP, GraphiQL, and subscriptions over graphql-transport-ws."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from cross_web import HTTPException
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from graphql import GraphQLError
from src.core.services import Services
from src.graphql.context import Context
from src.graphql.limits import GraphQLLimits
from src.graphql.metrics import GraphQLMetrics
from src.graphql.schema import build_schema
from src.graphql.sockets import KeelTransportWS, LiveSockets

TOO_DEEP = "the request's JSON is nested too deeply"


class KeelGraphQL(GraphQL):
    graphql_transport_ws_handler_class = KeelTransportWS

    def __init__(self, services: Services, *, graphiql: bool, limits: GraphQLLimits | None = None,
                 allowed_origins: Sequence[str] = (), metrics: GraphQLMetrics | None = None) -> None:
        self.limits = limits or GraphQLLimits()
        self.sockets = LiveSockets(self.limits.ws_max_per_caller)
        super().__init__(
            build_schema(self.limits, metrics),
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            # Uploads: safe from CSRF here because Keel authenticates by header (bearer token or API key),
            # never by cookie, so a cross-site form post carries no credentials.
            multipart_uploads_enabled=True,
            allowed_origins=[origin for origin in allowed_origins if origin != "*"],
            max_subscriptions_per_connection=self.limits.ws_max_operations,
        )
        self.any_origin = "*" in allowed_origins
        self.services = services

    async def get_context(self, request: Any, response: Any = None) -> Context:
        return Context(services=self.services, request=request, response=response)

    def is_websocket_origin_allowed(self, request: Any, origin: str) -> bool:
        return self.any_origin or super().is_websocket_origin_allowed(request, origin)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        except RecursionError:
            raise HTTPException(400, TOO_DEEP) from None

    def decode_json(self, data: str | bytes) -> object:
        try:
            return json.loads(data)
        except RecursionError:  # a websocket message: the socket closes with 4400 as for any non-JSON frame
            raise json.JSONDecodeError(TOO_DEEP, "", 0) from None

    async def execute_operation(self, request, request_adapter, request_data, context, root_value,
                                sub_response):
        """Queries and mutations over HTTP end after the configured time with a TIMEOUT error."""
        if isinstance(request_data, list):
            raise HTTPException(400, "batched operations are not accepted; send one operation per request")
        try:
            async with asyncio.timeout(self.limits.timeout_seconds):
                return await super().execute_operation(request, request_adapter, request_data, context,
                                                        root_value, sub_response)
        except TimeoutError:
            error = GraphQLError(f"the operation took longer than {self.limits.timeout_seconds:g} s and was "
                                 "stopped", extensions={"code": "TIMEOUT"})
            return ExecutionResult(data=None, errors=[error])
