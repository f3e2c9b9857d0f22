"""Platform roles: admins grant or withdraw the admin role; the console can name the first admin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from uuid import UUID

from src.core.identity.audit_trail import audit
from src.core.identity.authorize import require, signed_in
from src.core.identity.values import normalise_email
from src.ports.identity import ClientInfo, IdentityUnitOfWork, Permission, Principal, Role, User
from src.ports.shared import Clock, InvalidInput, NotFound


class GetCurrentUser:
    def __init__(self, uow: Callable[[], IdentityUnitOfWork]) -> None:
        self._uow = uow

    async def execute(self, principal: Principal | None) -> User:
        principal = signed_in(principal)
        async with self._uow() as uow:
            await require(uow, principal, Permission.ACCOUNT)
            user = await uow.users.get(principal.user_id)
        if user is None:
            raise NotFound("no such user")
        return user


class ListUsers:
    """- Needs users:manage (admins): accounts whose email contains the search, newest first, at most 100."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork]) -> None:
        self._uow = uow

    async def execute(self, principal: Principal | None, search: str = "", limit: int = 50) -> list[User]:
        if not 1 <= limit <= 100:
            raise InvalidInput("first must be between 1 and 100", field="first")
        async with self._uow() as uow:
            await require(uow, signed_in(principal), Permission.USERS_MANAGE)
            return await uow.users.search(search.strip()[:200], limit)


class SetUserRole:
    """- Needs users:manage; audited with the role before and after."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def execute(self, principal: Principal | None, user_id: UUID, role: Role, client: ClientInfo) -> User:
        principal = signed_in(principal)
        async with self._uow() as uow:
            await require(uow, principal, Permission.USERS_MANAGE)
            return await _set_role(uow, self._clock, await uow.users.get(user_id), role, principal.user_id, client)


class GrantRoleFromConsole:
    """- For `keel users set-role`: whoever runs the console already controls the deployment."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def execute(self, email: str, role: Role) -> User:
        async with self._uow() as uow:
            user = await uow.users.by_email(normalise_email(email))
            return await _set_role(uow, self._clock, user, role, None, ClientInfo(user_agent="keel console"))


async def _set_role(uow: IdentityUnitOfWork, clock: Clock, user: User | None, role: Role, actor: UUID | None,
                    client: ClientInfo) -> User:
    if user is None:
        raise NotFound("no such user")
    now = clock.now()
    updated = replace(user, role=role)
    await uow.users.save(updated)
    await audit(uow, now, "user.role_changed", actor, client, subject=str(user.id),
                details={"before": user.role, "after": role})
    await uow.commit()
    return updated
