"""Workspaces and membership: everything a user owns lives in a workspace they belong to."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from src.core.identity.audit_trail import audit
from src.core.identity.authorize import NO_ACCESS, require, signed_in
from src.core.identity.values import check_name, normalise_email
from src.ports.billing import EntitlementChecker, QuotaExceeded
from src.ports.identity import (
    ClientInfo,
    Forbidden,
    IdentityUnitOfWork,
    Membership,
    Permission,
    Principal,
    Unauthenticated,
    User,
    Workspace,
    WorkspaceRole,
)
from src.ports.shared import Clock, InvalidInput, NotFound


async def create_workspace_for(uow: IdentityUnitOfWork, owner: User, name: str, now: datetime) -> Workspace:
    workspace = Workspace(uuid.uuid4(), check_name(name, limit=200), now)
    await uow.workspaces.add(workspace)
    await uow.memberships.add(Membership(workspace.id, owner.id, WorkspaceRole.OWNER, now))
    return workspace


class _WorkspaceUseCase:
    def __init__(self, uow: Callable[[], IdentityUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def _load(self, uow: IdentityUnitOfWork, principal: Principal | None, workspace_id: UUID,
                    permission: Permission) -> Workspace:
        await require(uow, principal, permission, workspace_id)
        workspace = await uow.workspaces.get(workspace_id)
        if workspace is None:
            raise Forbidden(NO_ACCESS)
        return workspace


class CreateWorkspace(_WorkspaceUseCase):
    async def execute(self, principal: Principal | None, name: str, client: ClientInfo) -> Workspace:
        principal = signed_in(principal)
        now = self._clock.now()
        async with self._uow() as uow:
            await require(uow, principal, Permission.WORKSPACE_CREATE)
            owner = await uow.users.get(principal.user_id)
            if owner is None:
                raise Unauthenticated("sign in first")
            workspace = await create_workspace_for(uow, owner, name, now)
            await audit(uow, now, "workspace.created", owner.id, client, subject=str(workspace.id))
            await uow.commit()
        return workspace


class ListWorkspaces(_WorkspaceUseCase):
    """- A user's workspaces with their role; an API key sees only its own workspace."""

    async def execute(self, principal: Principal | None) -> list[tuple[Workspace, WorkspaceRole]]:
        principal = signed_in(principal)
        async with self._uow() as uow:
            if principal is not None and principal.api_key_id is not None:
                await require(uow, principal, Permission.WORKSPACE_READ, principal.key_workspace_id)
                found = await uow.workspaces.of_user(principal.user_id)
                return [(w, role) for w, role in found if w.id == principal.key_workspace_id]
            await require(uow, principal, Permission.ACCOUNT)
            return await uow.workspaces.of_user(principal.user_id)


class GetWorkspace(_WorkspaceUseCase):
    async def execute(self, principal: Principal | None, workspace_id: UUID) -> tuple[Workspace, WorkspaceRole]:
        principal = signed_in(principal)
        async with self._uow() as uow:
            role = await require(uow, principal, Permission.WORKSPACE_READ, workspace_id)
            workspace = await self._load(uow, principal, workspace_id, Permission.WORKSPACE_READ)
        if role is None:  # an API key's workspace, as its creator's role there
            raise Forbidden(NO_ACCESS)
        return workspace, role


class RenameWorkspace(_WorkspaceUseCase):
    async def execute(self, principal: Principal | None, workspace_id: UUID, name: str,
                      client: ClientInfo) -> Workspace:
        principal = signed_in(principal)
        now = self._clock.now()
        async with self._uow() as uow:
            workspace = replace(await self._load(uow, principal, workspace_id, Permission.WORKSPACE_MANAGE),
                                name=check_name(name))
            await uow.workspaces.save(workspace)
            await audit(uow, now, "workspace.renamed", principal.user_id, client, subject=str(workspace_id))
            await uow.commit()
        return workspace


class DeleteWorkspace(_WorkspaceUseCase):
    """- Owners only; removes everything in it (the database cascades)."""

    async def execute(self, principal: Principal | None, workspace_id: UUID, client: ClientInfo) -> None:
        principal = signed_in(principal)
        now = self._clock.now()
        async with self._uow() as uow:
            await self._load(uow, principal, workspace_id, Permission.WORKSPACE_MANAGE)
            await uow.workspaces.delete(workspace_id)
            await audit(uow, now, "workspace.deleted", principal.user_id, client, subject=str(workspace_id))
            await uow.commit()


class ListMembers(_WorkspaceUseCase):
    async def execute(self, principal: Principal | None, workspace_id: UUID) -> list[tuple[Membership, User]]:
        principal = signed_in(principal)
        async with self._uow() as uow:
            await self._load(uow, principal, workspace_id, Permission.WORKSPACE_READ)
            return await uow.memberships.of_workspace(workspace_id)


class SetMember(_WorkspaceUseCase):
    """- Adds an existing user by email, or changes a member's role; audited as a role change.
    - A new member needs a free seat of the workspace's plan (members already there stay after a downgrade).
    - The last owner cannot be demoted. Membership changes of a workspace happen one at a time, so two
      concurrent additions cannot both take the last seat.
    """

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], clock: Clock, entitlements: EntitlementChecker) -> None:
        super().__init__(uow, clock)
        self._entitlements = entitlements

    async def execute(self, principal: Principal | None, workspace_id: UUID, email: str, role: WorkspaceRole,
                      client: ClientInfo) -> tuple[Membership, User]:
        principal = signed_in(principal)
        email = normalise_email(email)
        now = self._clock.now()
        async with self._uow() as uow:
            await self._load(uow, principal, workspace_id, Permission.WORKSPACE_MANAGE)
        seats = (await self._entitlements.entitlement(workspace_id)).limits.seats  # read with no transaction open
        async with self._uow() as uow:
            await uow.workspaces.hold(workspace_id)
            user = await uow.users.by_email(email)
            if user is None:
                raise NotFound("no user with that email; they need to sign up first")
            before = await uow.memberships.get(workspace_id, user.id)
            if before is None and len(await uow.memberships.of_workspace(workspace_id)) >= seats:
                raise QuotaExceeded(f"the workspace's plan has {seats} seat{'s' if seats != 1 else ''} and all "
                                    "are taken; upgrade the plan or remove a member", limit="seats")
            if before and before.role == WorkspaceRole.OWNER and role != WorkspaceRole.OWNER:
                await _keep_an_owner(uow, workspace_id)
            membership = Membership(workspace_id, user.id, role, before.created_at if before else now)
            if before:
                await uow.memberships.remove(workspace_id, user.id)
            await uow.memberships.add(membership)
            await audit(uow, now, "workspace.member_role_changed", principal.user_id, client,
                        subject=str(workspace_id), details={"user_id": str(user.id),
                                                            "before": before.role if before else None, "after": role})
            await uow.commit()
        return membership, user


class RemoveMember(_WorkspaceUseCase):
    async def execute(self, principal: Principal | None, workspace_id: UUID, user_id: UUID,
                      client: ClientInfo) -> None:
        principal = signed_in(principal)
        now = self._clock.now()
        async with self._uow() as uow:
            await self._load(uow, principal, workspace_id, Permission.WORKSPACE_MANAGE)
            await uow.workspaces.hold(workspace_id)
            member = await uow.memberships.get(workspace_id, user_id)
            if member is None:
                raise NotFound("that user is not a member of this workspace")
            if member.role == WorkspaceRole.OWNER:
                await _keep_an_owner(uow, workspace_id)
            await uow.memberships.remove(workspace_id, user_id)
            await audit(uow, now, "workspace.member_removed", principal.user_id, client,
                        subject=str(workspace_id), details={"user_id": str(user_id), "before": member.role})
            await uow.commit()


async def _keep_an_owner(uow: IdentityUnitOfWork, workspace_id: UUID) -> None:
    owners = [m for m, _ in await uow.memberships.of_workspace(workspace_id) if m.role == WorkspaceRole.OWNER]
    if len(owners) <= 1:
        raise InvalidInput("a workspace needs at least one owner; make someone else owner first", field="role")
