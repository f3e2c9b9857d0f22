"""Helpers for conversation tests: documents made ready in-process, plans set as billing would, a chat
consumed through the use case or through a websocket."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from dependency_injector import providers

from src.core.billing.entitlements import snapshot
from src.core.conversation.chat import Started
from src.core.conversation.live import Delta
from src.core.knowledge.documents import DocumentUpload
from src.core.knowledge.ingestion import GRAPH_JOB
from src.evaluation.retrieval import CollectedJobs
from src.ports.billing import Entitlement, EntitlementChange, EntitlementStatus
from src.ports.conversation import Message
from src.ports.identity import Membership, Principal, Role, User, Workspace, WorkspaceRole
from src.ports.metering import Reservation
from src.ports.models import Usage


def member(user_id: uuid.UUID) -> Principal:
    """A signed-in member as the use cases see one (the GraphQL layer passes the authenticated caller)."""
    return Principal(user_id=user_id, role=Role.USER)


async def owner_of(container, workspace_id: uuid.UUID) -> uuid.UUID:
    async with container.identity_uow() as uow:
        members = await uow.memberships.of_workspace(workspace_id)
    return next(m.user_id for m, _ in members if m.role == WorkspaceRole.OWNER)


async def ready_documents(container, workspace_id: uuid.UUID, documents: dict[str, str],
                          uploaded_by: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Uploads, ingests and builds the knowledge graph right here (no worker): the documents are searchable
    on return. Their ids, in the order given."""
    collected = CollectedJobs()
    container.jobs.override(providers.Object(collected))
    try:
        uploads = [DocumentUpload(title, body.encode(), "text/markdown") for title, body in documents.items()]
        uploader = member(uploaded_by or await owner_of(container, workspace_id))
        await container.upload_documents().execute(uploader, workspace_id, uploads)
        ids = [uuid.UUID(raw) for job in collected.jobs for raw in job.kwargs["document_ids"]]
        await container.ingest_documents().execute(ids)
        graph_jobs = [job for job in collected.jobs if job.name == GRAPH_JOB]
        for job in graph_jobs:
            await container.build_document_graph().execute([uuid.UUID(raw) for raw in job.kwargs["document_ids"]])
    finally:
        container.jobs.reset_override()
    return ids


async def account(container) -> tuple[uuid.UUID, uuid.UUID]:
    """A user owning a new workspace, written directly: (user id, workspace id)."""
    now = datetime.now(UTC)
    user = User(uuid.uuid4(), f"c-{uuid.uuid4().hex[:8]}@example.com", now)
    workspace = Workspace(uuid.uuid4(), "chat", now)
    async with container.identity_uow() as uow:
        await uow.users.add(user)
        await uow.workspaces.add(workspace)
        await uow.memberships.add(Membership(workspace.id, user.id, WorkspaceRole.OWNER, now))
        await uow.commit()
    return user.id, workspace.id


async def on_plan(container, workspace_id: uuid.UUID, plan_name: str) -> None:
    """The entitlement a subscription to `plan_name` would give (what billing writes)."""
    plan = container.catalogue().get(plan_name)
    now = datetime.now(UTC)
    entitlement = Entitlement(workspace_id, plan.name, plan.limits, EntitlementStatus.ACTIVE, None, None, now)
    async with container.billing_uow() as uow:
        await uow.billing.save_entitlement(entitlement, EntitlementChange(
            workspace_id, None, snapshot(entitlement), "test", now))
        await uow.commit()


async def used_today(container, workspace_id: uuid.UUID, user_id: uuid.UUID, tokens: int) -> None:
    """Settled usage already on today's ledger (reserved and settled as an earlier answer's)."""
    now = datetime.now(UTC)
    reservation = Reservation(uuid.uuid4(), workspace_id, user_id, uuid.uuid4(), "earlier", now.date(), tokens, now)
    async with container.conversation_uow() as uow:
        await uow.usage.reserve(reservation)
        await uow.usage.settle(reservation.id, "earlier", Usage(tokens, 0), 0.0, now)
        await uow.commit()


async def ask(container, user_id, workspace_id, question: str, conversation_id=None,
              caller: Principal | None = None) -> tuple[Message, list[str]]:
    """Runs one answer through the use case (as the member, or `caller`); returns the final message and the
    deltas seen."""
    deltas, final = [], None
    send = container.send_message()
    async for event in send.execute(caller or member(user_id), workspace_id, conversation_id, question):
        if isinstance(event, Delta):
            deltas.append(event.text)
        elif not isinstance(event, Started):
            final = event
    return final, deltas


def ids(account: dict) -> tuple[uuid.UUID, uuid.UUID]:
    return uuid.UUID(account["user"]["id"]), uuid.UUID(account["user"]["workspaces"][0]["id"])
