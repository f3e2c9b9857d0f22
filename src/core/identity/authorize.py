"""Authorize: the check every entry point runs before acting (GraphQL fields and use cases alike)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

from src.core.identity.policy import is_allowed
from src.ports.identity import (
    WORKSPACE_PERMISSIONS,
    Forbidden,
    IdentityUnitOfWork,
    Permission,
    Principal,
    Unauthenticated,
    WorkspaceRole,
)

NO_ACCESS = "no such workspace, or no access to it"  # one message: ids cannot be probed

# The membership reads of this operation, by (workspace, user): None outside one (see memberships_read_once)
Reads = dict[tuple[UUID, UUID], asyncio.Future[WorkspaceRole | None]]
_read: ContextVar[Reads | None] = ContextVar("keel_memberships", default=None)


def memberships_read_once_in_this_task() -> None:
    """The same until the current task ends: for an operation that runs in a task of its own (a subscription,
    whose use case runs after the operation's start)."""
    _read.set({})


@contextmanager
def memberships_read_once() -> Iterator[None]:
    """Within it (one read-only operation: a query), Authorize reads each membership once: a field's guard and
    its use case ask the same question. Not for operations that change memberships."""
    token = _read.set({})
    try:
        yield
    finally:
        try:
            _read.reset(token)
        except ValueError:  # ended from another context (a generator closed elsewhere): forget them anyway
            _read.set(None)


def signed_in(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthenticated("sign in first")
    return principal


async def require(uow: IdentityUnitOfWork | None, principal: Principal | None, permission: Permission,
                  workspace_id: UUID | None = None) -> WorkspaceRole | None:
    """Raise unless `principal` may do `permission` (in `workspace_id`); returns the membership role."""
    if principal is None:
        raise Unauthenticated("sign in first")
    membership = None
    if permission in WORKSPACE_PERMISSIONS:
        if workspace_id is None or uow is None:
            raise Forbidden(NO_ACCESS)
        found = await uow.memberships.get(workspace_id, principal.user_id)
        membership = found.role if found else None
    if not is_allowed(principal, permission, membership, workspace_id):
        raise Forbidden(NO_ACCESS if permission in WORKSPACE_PERMISSIONS else "you may not do that")
    return membership


class Authorize:
    """The AccessPolicy every domain's use cases ask (and the GraphQL guard, their first line): may `principal`
    do `permission` (in `workspace_id`)? Raises if not."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork]) -> None:
        self._uow = uow

    async def require(self, principal: Principal | None, permission: Permission,
                      workspace_id: UUID | None = None) -> Principal:
        if permission not in WORKSPACE_PERMISSIONS or workspace_id is None or principal is None:
            await require(None, principal, permission)  # global permissions need no lookup
            return signed_in(principal)
        if not is_allowed(principal, permission, await self._role(workspace_id, principal.user_id), workspace_id):
            raise Forbidden(NO_ACCESS)
        return principal

    async def _role(self, workspace_id: UUID, user_id: UUID) -> WorkspaceRole | None:
        read, key = _read.get(), (workspace_id, user_id)
        if read is None:
            return await self._read_role(workspace_id, user_id)
        if key not in read:  # a query's root fields run at once: the first to ask reads for all of them
            read[key] = asyncio.ensure_future(self._read_role(workspace_id, user_id))
        return await asyncio.shield(read[key])

    async def _read_role(self, workspace_id: UUID, user_id: UUID) -> WorkspaceRole | None:
        async with self._uow() as uow:
            found = await uow.memberships.get(workspace_id, user_id)
        return found.role if found else None
