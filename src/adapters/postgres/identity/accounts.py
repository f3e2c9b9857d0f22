"""Users, workspaces and memberships in Postgres."""

from __future__ import annotations

import uuid
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.identity.tables import MembershipRow, UserRow, WorkspaceRow
from src.adapters.postgres.mapping import to_record, values_of
from src.ports.identity import EmailTaken, Membership, Role, User, Workspace, WorkspaceRole


def _user(row: UserRow) -> User:
    return to_record(row, User, role=Role(row.role))


def _membership(row: MembershipRow) -> Membership:
    return to_record(row, Membership, role=WorkspaceRole(row.role))


class PgUserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, user: User) -> None:
        try:
            async with self._session.begin_nested():
                self._session.add(UserRow(**values_of(user, role=str(user.role))))
        except IntegrityError:
            raise EmailTaken("this email cannot be used to sign up; sign in or reset the password instead") from None

    async def get(self, user_id: UUID) -> User | None:
        row = await self._session.get(UserRow, user_id)
        return None if row is None else _user(row)

    async def by_email(self, email: str) -> User | None:
        row = (await self._session.execute(select(UserRow).where(UserRow.email == email))).scalar_one_or_none()
        return None if row is None else _user(row)

    async def save(self, user: User) -> None:
        await self._session.merge(UserRow(**values_of(user, role=str(user.role))))
        await self._session.flush()

    async def search(self, email_part: str, limit: int) -> list[User]:
        query = select(UserRow).order_by(UserRow.created_at.desc(), UserRow.id).limit(limit)
        if email_part:
            escaped = email_part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(UserRow.email.ilike(f"%{escaped}%", escape="\\"))
        return [_user(row) for row in (await self._session.execute(query)).scalars()]


class PgWorkspaceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, workspace: Workspace) -> None:
        self._session.add(WorkspaceRow(**values_of(workspace)))
        await self._session.flush()

    async def get(self, workspace_id: UUID) -> Workspace | None:
        row = await self._session.get(WorkspaceRow, workspace_id)
        return None if row is None else to_record(row, Workspace)

    async def hold(self, workspace_id: UUID) -> None:
        await self._session.execute(select(WorkspaceRow.id).where(WorkspaceRow.id == workspace_id).with_for_update())

    async def save(self, workspace: Workspace) -> None:
        await self._session.merge(WorkspaceRow(**values_of(workspace)))
        await self._session.flush()

    async def delete(self, workspace_id: UUID) -> None:
        await self._session.execute(delete(WorkspaceRow).where(WorkspaceRow.id == workspace_id))

    async def of_user(self, user_id: UUID) -> list[tuple[Workspace, WorkspaceRole]]:
        query = (
            select(WorkspaceRow, MembershipRow.role)
            .join(MembershipRow, MembershipRow.workspace_id == WorkspaceRow.id)
            .where(MembershipRow.user_id == user_id)
            .order_by(WorkspaceRow.created_at, WorkspaceRow.id)
        )
        return [(to_record(row, Workspace), WorkspaceRole(role)) for row, role in await self._session.execute(query)]


class PgMembershipRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, membership: Membership) -> None:
        self._session.add(MembershipRow(id=uuid.uuid4(), **values_of(membership, role=str(membership.role))))
        await self._session.flush()

    async def get(self, workspace_id: UUID, user_id: UUID) -> Membership | None:
        table = MembershipRow.__table__  # a plain row: checked on every request, the ORM's CPU is not needed
        query = select(table).where(table.c.workspace_id == workspace_id, table.c.user_id == user_id)
        row = (await self._session.execute(query)).one_or_none()
        return None if row is None else _membership(row)

    async def remove(self, workspace_id: UUID, user_id: UUID) -> None:
        await self._session.execute(delete(MembershipRow).where(MembershipRow.workspace_id == workspace_id,
                                                                MembershipRow.user_id == user_id))

    async def of_workspace(self, workspace_id: UUID) -> list[tuple[Membership, User]]:
        query = (
            select(MembershipRow, UserRow)
            .join(UserRow, UserRow.id == MembershipRow.user_id)
            .where(MembershipRow.workspace_id == workspace_id)
            .order_by(MembershipRow.created_at, UserRow.email)
        )
        return [(_membership(m), _user(u)) for m, u in await self._session.execute(query)]
