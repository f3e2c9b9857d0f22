"""A person's own data: a copy of all of it (export), and erasure of the account."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from src.core.identity.audit_trail import audit
from src.core.identity.authorize import require, signed_in
from src.core.identity.values import normalise_email
from src.ports.billing import EntitlementChecker
from src.ports.identity import (
    ClientInfo,
    IdentityUnitOfWork,
    InvalidCredentials,
    PasswordHasher,
    Permission,
    Principal,
    Unauthenticated,
    User,
    WorkspaceRole,
)
from src.ports.shared import Clock, InvalidInput


@dataclass(frozen=True)
class AccountErasure:
    workspaces_deleted: int
    rows: dict[str, int]  # rows removed per table


class ExportAccountData:
    """- The signed-in person (a session, not an API key) gets everything Keel holds about them as JSON."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def execute(self, principal: Principal | None, client: ClientInfo) -> dict[str, Any]:
        user_id = _own_session(principal)
        now = self._clock.now()
        async with self._uow() as uow:
            await require(uow, principal, Permission.ACCOUNT)
            archive = await uow.account_data.export(user_id)
            await audit(uow, now, "account.exported", user_id, client, subject=str(user_id))
            await uow.commit()
        return {"format": "keel-account-export/1", "exported_at": now.isoformat(), **archive}


class EraseAccount:
    """- The signed-in person deletes their account, confirming with their email and (when they have one)
      their password. Workspaces where they are the only member go with everything in them; from shared
      ones they leave, and what they put there stays without their name.
    - Refused, changing nothing, while a shared workspace would be left without an owner or a workspace to
      delete still has a paid subscription (Stripe would go on charging): the error says which."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], hasher: PasswordHasher, clock: Clock,
                 entitlements: EntitlementChecker) -> None:
        self._uow, self._hasher, self._clock, self._entitlements = uow, hasher, clock, entitlements

    async def execute(self, principal: Principal | None, confirm_email: str, password: str | None,
                      client: ClientInfo) -> AccountErasure:
        user_id = _own_session(principal)
        async with self._uow() as uow:
            await require(uow, principal, Permission.ACCOUNT)
            user = await uow.users.get(user_id)
        if user is None:
            raise Unauthenticated("sign in first")
        await self._confirm(user, confirm_email, password)  # no connection is held while hashing
        now = self._clock.now()
        async with self._uow() as uow:
            doomed = await self._workspaces_to_delete(uow, user_id)
            rows = await uow.account_data.erase(user_id, doomed)
            await audit(uow, now, "account.erased", None, client,
                        details={"workspaces_deleted": len(doomed)})
            await uow.commit()
        return AccountErasure(len(doomed), rows)

    async def _confirm(self, user: User, confirm_email: str, password: str | None) -> None:
        if normalise_email(confirm_email or "") != user.email:
            raise InvalidInput("type the account's email to confirm", field="confirmEmail")
        if user.password_hash and not await self._hasher.verify(user.password_hash, password or ""):
            raise InvalidCredentials("the password is wrong")

    async def _workspaces_to_delete(self, uow: IdentityUnitOfWork, user_id: UUID) -> list[UUID]:
        doomed, orphaned, paid = [], [], []
        for workspace, role in await uow.workspaces.of_user(user_id):
            others = [member for member, _ in await uow.memberships.of_workspace(workspace.id)
                      if member.user_id != user_id]
            if not others:
                doomed.append(workspace.id)
                if (await self._entitlements.entitlement(workspace.id)).subscription_id:
                    paid.append(workspace.name)
            elif role == WorkspaceRole.OWNER and not any(m.role == WorkspaceRole.OWNER for m in others):
                orphaned.append(workspace.name)
        if orphaned:
            raise InvalidInput(f"make another member owner of {', '.join(sorted(orphaned))} first (or delete it)",
                               field="confirmEmail")
        if paid:
            raise InvalidInput(f"cancel the subscription of {', '.join(sorted(paid))} first (billing portal)",
                               field="confirmEmail")
        return doomed


def _own_session(principal: Principal | None) -> UUID:
    principal = signed_in(principal)
    if principal.session_id is None:
        raise Unauthenticated("this needs a signed-in session, not an API key")
    return principal.user_id
