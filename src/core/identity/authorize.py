"""Authorize: the check every entry point runs before acting (GraphQL fields and use cases alike)."""

from __future__ import annotations

from collections.abc import Callable
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
        if permission not in WORKSPACE_PERMISSIONS:
            await require(None, principal, permission)  # global permissions need no lookup
        else:
            async with self._uow() as uow:
                await require(uow, principal, permission, workspace_id)
        return signed_in(principal)
