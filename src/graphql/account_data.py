"""A person's own data: `accountExport` (everything Keel holds about them, as JSON) and `deleteAccount`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from src.graphql.context import Info
from src.graphql.errors import AuthError, ForbiddenError, InvalidInputError, answer
from src.graphql.identity import caller
from src.graphql.permissions import require
from src.ports.identity import Permission


@strawberry.type
class AccountExport:
    exported_at: datetime
    data: JSON = strawberry.field(description="profile, workspaces, sessions, sign-in identities, API keys, "
                                              "conversations with messages and ratings, documents uploaded, "
                                              "usage per day and model, audit entries")


@strawberry.type
class AccountDeleted:
    workspaces_deleted: int
    rows_deleted: JSON = strawberry.field(description="rows removed per table")


AccountExportResult = Annotated[AccountExport | AuthError | ForbiddenError, strawberry.union("AccountExportResult")]
DeleteAccountResult = Annotated[AccountDeleted | InvalidInputError | AuthError | ForbiddenError,
                                strawberry.union("DeleteAccountResult")]


@strawberry.type
class AccountDataQuery:
    @strawberry.field(extensions=require(Permission.ACCOUNT),
                      description="A copy of everything Keel holds about me (a session, not an API key).")
    async def account_export(self, info: Info) -> AccountExportResult:
        services, client, principal = await caller(info)
        export = services.export_account_data()
        return await answer(lambda: export.execute(principal, client),
                            lambda data: AccountExport(exported_at=datetime.fromisoformat(data["exported_at"]),
                                                       data=data))


@strawberry.type
class AccountDataMutation:
    @strawberry.mutation(extensions=require(Permission.ACCOUNT),
                         description="Delete my account: my own workspaces with everything in them, my sessions, "
                                     "keys and conversations; what I added to shared workspaces stays, unnamed.")
    async def delete_account(self, info: Info, confirm_email: str, password: str | None = None) -> DeleteAccountResult:
        services, client, principal = await caller(info)
        erase = services.erase_account()
        return await answer(lambda: erase.execute(principal, confirm_email, password, client),
                            lambda done: AccountDeleted(workspaces_deleted=done.workspaces_deleted,
                                                        rows_deleted=done.rows))
