"""System fields: worker probes (request one, read it, watch it until a worker has processed it)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry

from src.core.system.probes import parse_probe_id
from src.graphql.context import Info
from src.graphql.errors import InvalidInputError, NotFoundError, UnavailableError, answer, to_graphql_error
from src.graphql.permissions import require
from src.ports.identity import Permission
from src.ports.shared import DomainError
from src.ports.system import WorkerProbe


@strawberry.type(name="WorkerProbe")
class WorkerProbeType:
    id: strawberry.ID
    requested_at: datetime
    processed_at: datetime | None
    processed_by: str | None
    done: bool

    @classmethod
    def of(cls, probe: WorkerProbe) -> WorkerProbeType:
        return cls(
            id=strawberry.ID(str(probe.id)),
            requested_at=probe.requested_at,
            processed_at=probe.processed_at,
            processed_by=probe.processed_by,
            done=probe.done,
        )


WorkerProbeResult = Annotated[
    WorkerProbeType | NotFoundError | InvalidInputError | UnavailableError,
    strawberry.union("WorkerProbeResult"),
]


@strawberry.type
class SystemQuery:
    @strawberry.field(extensions=require(Permission.SYSTEM_OPERATE), description="A worker probe by id.")
    async def worker_probe(self, info: Info, id: strawberry.ID) -> WorkerProbeResult:
        caller, get = await info.context.principal(), info.context.services.get_worker_probe()
        return await answer(lambda: get.execute(caller, parse_probe_id(id)), WorkerProbeType.of)


@strawberry.type
class SystemMutation:
    @strawberry.mutation(extensions=require(Permission.SYSTEM_OPERATE),
                         description="Enqueue a job that a worker must process; proves the job pipeline.")
    async def request_worker_probe(self, info: Info) -> WorkerProbeResult:
        caller, request = await info.context.principal(), info.context.services.request_worker_probe()
        return await answer(lambda: request.execute(caller), WorkerProbeType.of)


@strawberry.type
class SystemSubscription:
    @strawberry.subscription(extensions=require(Permission.SYSTEM_OPERATE),
                             description="The probe now and on every change, until a worker processed it.")
    async def worker_probe(self, info: Info, id: strawberry.ID) -> AsyncGenerator[WorkerProbeResult, None]:
        try:
            caller, watch = await info.context.principal(), info.context.services.watch_worker_probe()
            async for probe in watch.execute(caller, parse_probe_id(id)):
                yield WorkerProbeType.of(probe)
        except DomainError as exc:
            yield to_graphql_error(exc)
