"""Identity fields: sign-up/in/out, sessions, OAuth, password reset, workspaces, API keys, audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from src.core.identity.api_keys import KeyLimits
from src.graphql.context import Info
from src.graphql.errors import (
    AuthError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
    TooManyAttemptsError,
    UnavailableError,
    answer,
)
from src.graphql.identity_types import (
    ApiKeyType,
    AuditEventType,
    AuthPayload,
    CreatedApiKey,
    MemberType,
    OAuthStartPayload,
    Ok,
    PermissionEnum,
    RoleEnum,
    UserType,
    WorkspaceRoleEnum,
    WorkspaceType,
)
from src.graphql.ids import parse_id
from src.graphql.permissions import public, require, signed_in
from src.ports.identity import Permission

AuthResult = Annotated[
    AuthPayload | InvalidInputError | AuthError | TooManyAttemptsError | UnavailableError,
    strawberry.union("AuthResult")]
OkResult = Annotated[
    Ok | InvalidInputError | AuthError | ForbiddenError | NotFoundError | TooManyAttemptsError,
    strawberry.union("OkResult")]
UserResult = Annotated[
    UserType | InvalidInputError | AuthError | ForbiddenError | NotFoundError,
    strawberry.union("UserResult")]
WorkspaceResult = Annotated[
    WorkspaceType | InvalidInputError | ForbiddenError | NotFoundError,
    strawberry.union("WorkspaceResult")]
MemberResult = Annotated[
    MemberType | InvalidInputError | ForbiddenError | NotFoundError | QuotaExceededError | UnavailableError,
    strawberry.union("MemberResult")]
ApiKeyResult = Annotated[
    ApiKeyType | InvalidInputError | ForbiddenError | NotFoundError,
    strawberry.union("ApiKeyResult")]
CreatedApiKeyResult = Annotated[
    CreatedApiKey | InvalidInputError | ForbiddenError,
    strawberry.union("CreatedApiKeyResult")]
OAuthStartResult = Annotated[OAuthStartPayload | InvalidInputError | AuthError, strawberry.union("OAuthStartResult")]


def _ok(_: object) -> Ok:
    return Ok()


async def caller(info: Info):
    """The services, the client's address/agent and the (already authorised) principal."""
    return info.context.services, info.context.client, await info.context.principal()


@strawberry.type
class IdentityQuery:
    @strawberry.field(extensions=require(Permission.ACCOUNT), description="The signed-in user.")
    async def me(self, info: Info) -> UserType:
        return UserType.of(await info.context.services.get_current_user().execute(await info.context.principal()))

    @strawberry.field(name="oauthProviders", extensions=public(),
                      description="The providers one may sign in with (google, github): those configured.")
    async def oauth_providers(self, info: Info) -> list[str]:
        return await info.context.services.list_oauth_providers().execute()

    @strawberry.field(extensions=signed_in(), description="My workspaces (an API key sees only its own).")
    async def workspaces(self, info: Info) -> list[WorkspaceType]:
        found = await info.context.services.list_workspaces().execute(await info.context.principal())
        return [WorkspaceType.of(workspace, role) for workspace, role in found]

    @strawberry.field(extensions=require(Permission.WORKSPACE_READ, "id"))
    async def workspace(self, info: Info, id: strawberry.ID) -> WorkspaceResult:
        services, _, principal = await caller(info)
        get = services.get_workspace()
        return await answer(lambda: get.execute(principal, parse_id(id, "id")), lambda found: WorkspaceType.of(*found))

    @strawberry.field(extensions=require(Permission.API_KEYS_MANAGE, "workspace_id"))
    async def api_keys(self, info: Info, workspace_id: strawberry.ID) -> list[ApiKeyType]:
        keys = await info.context.services.list_api_keys().execute(await info.context.principal(),
                                                                   parse_id(workspace_id, "workspaceId"))
        return [ApiKeyType.of(key) for key in keys]

    @strawberry.field(extensions=require(Permission.USERS_MANAGE),
                      description="Admins: accounts whose email contains `search`, newest first (first: 1-100).")
    async def users(self, info: Info, search: str = "", first: int = 50) -> list[UserType]:
        found = await info.context.services.list_users().execute(await info.context.principal(), search, first)
        return [UserType.of(user) for user in found]

    @strawberry.field(extensions=require(Permission.AUDIT_READ), description="Admins: newest first.")
    async def audit_log(self, info: Info, action: str | None = None, actor_id: strawberry.ID | None = None,
                        before: datetime | None = None, limit: int = 50) -> list[AuditEventType]:
        events = await info.context.services.query_audit_log().execute(
            await info.context.principal(), action=action, before=before, limit=max(1, min(limit, 200)),
            actor_id=parse_id(actor_id, "actorId") if actor_id else None,
        )
        return [AuditEventType.of(event) for event in events]


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(extensions=public())
    async def sign_up(self, info: Info, email: str, password: str, display_name: str = "") -> AuthResult:
        sign_up, client = info.context.services.sign_up(), info.context.client
        return await answer(lambda: sign_up.execute(email, password, display_name, client), AuthPayload.of)

    @strawberry.mutation(extensions=public())
    async def sign_in(self, info: Info, email: str, password: str) -> AuthResult:
        sign_in, client = info.context.services.sign_in(), info.context.client
        return await answer(lambda: sign_in.execute(email, password, client), AuthPayload.of)

    @strawberry.mutation(extensions=public(), description="Trade a refresh token for new tokens (it rotates).")
    async def refresh_session(self, info: Info, refresh_token: str) -> AuthResult:
        refresh, client = info.context.services.refresh_session(), info.context.client
        return await answer(lambda: refresh.execute(refresh_token, client), AuthPayload.of)

    @strawberry.mutation(name="startOAuth", extensions=public(),
                         description="Begin OAuth sign-in: send the browser to the URL.")
    async def start_oauth(self, info: Info, provider: str) -> OAuthStartResult:
        start = info.context.services.start_oauth()
        return await answer(lambda: start.execute(provider),
                            lambda s: OAuthStartPayload(authorization_url=s.authorization_url, state=s.state))

    @strawberry.mutation(name="completeOAuth", extensions=public(),
                         description="Finish OAuth sign-in with the code and state.")
    async def complete_oauth(self, info: Info, provider: str, code: str, state: str) -> AuthResult:
        complete, client = info.context.services.complete_oauth(), info.context.client
        return await answer(lambda: complete.execute(provider, code, state, client), AuthPayload.of)

    @strawberry.mutation(extensions=public(), description="Mails a reset code if the account exists; always ok.")
    async def request_password_reset(self, info: Info, email: str) -> OkResult:
        request, client = info.context.services.request_password_reset(), info.context.client
        return await answer(lambda: request.execute(email, client), _ok)

    @strawberry.mutation(extensions=public())
    async def reset_password(self, info: Info, token: str, new_password: str) -> OkResult:
        reset, client = info.context.services.reset_password(), info.context.client
        return await answer(lambda: reset.execute(token, new_password, client), _ok)

    @strawberry.mutation(extensions=require(Permission.ACCOUNT), description="End this session, or all of them.")
    async def sign_out(self, info: Info, everywhere: bool = False) -> OkResult:
        services, client, principal = await caller(info)
        sign_out = services.sign_out()
        return await answer(lambda: sign_out.execute(principal, client, everywhere=everywhere), _ok)

    @strawberry.mutation(extensions=require(Permission.ACCOUNT))
    async def change_password(self, info: Info, current_password: str, new_password: str) -> OkResult:
        services, client, principal = await caller(info)
        change = services.change_password()
        return await answer(lambda: change.execute(principal, current_password, new_password, client), _ok)

    @strawberry.mutation(extensions=require(Permission.WORKSPACE_CREATE))
    async def create_workspace(self, info: Info, name: str) -> WorkspaceResult:
        services, client, principal = await caller(info)
        create = services.create_workspace()
        return await answer(lambda: create.execute(principal, name, client),
                            lambda w: WorkspaceType.of(w, WorkspaceRoleEnum.OWNER))

    @strawberry.mutation(extensions=require(Permission.WORKSPACE_MANAGE, "id"))
    async def rename_workspace(self, info: Info, id: strawberry.ID, name: str) -> WorkspaceResult:
        services, client, principal = await caller(info)
        rename = services.rename_workspace()
        return await answer(lambda: rename.execute(principal, parse_id(id, "id"), name, client), WorkspaceType.of)

    @strawberry.mutation(extensions=require(Permission.WORKSPACE_MANAGE, "id"))
    async def delete_workspace(self, info: Info, id: strawberry.ID) -> OkResult:
        services, client, principal = await caller(info)
        delete = services.delete_workspace()
        return await answer(lambda: delete.execute(principal, parse_id(id, "id"), client), _ok)

    @strawberry.mutation(extensions=require(Permission.WORKSPACE_MANAGE, "workspace_id"),
                         description="Add an existing user to the workspace, or change their role.")
    async def set_member(self, info: Info, workspace_id: strawberry.ID, email: str,
                         role: WorkspaceRoleEnum) -> MemberResult:
        services, client, principal = await caller(info)
        set_member = services.set_member()
        return await answer(
            lambda: set_member.execute(principal, parse_id(workspace_id, "workspaceId"), email, role, client),
            lambda found: MemberType.of(*found),
        )

    @strawberry.mutation(extensions=require(Permission.WORKSPACE_MANAGE, "workspace_id"))
    async def remove_member(self, info: Info, workspace_id: strawberry.ID, user_id: strawberry.ID) -> OkResult:
        services, client, principal = await caller(info)
        remove = services.remove_member()
        workspace, user = parse_id(workspace_id, "workspaceId"), parse_id(user_id, "userId")
        return await answer(lambda: remove.execute(principal, workspace, user, client), _ok)

    @strawberry.mutation(extensions=require(Permission.API_KEYS_MANAGE, "workspace_id"),
                         description="A key for server-to-server use, with its own rate limit and daily model "
                                     "budget if given.")
    async def create_api_key(self, info: Info, workspace_id: strawberry.ID, name: str, scopes: list[PermissionEnum],
                             requests_per_minute: int | None = None,
                             daily_tokens: int | None = None) -> CreatedApiKeyResult:
        services, client, principal = await caller(info)
        create = services.create_api_key()
        workspace = parse_id(workspace_id, "workspaceId")
        return await answer(
            lambda: create.execute(principal, workspace, name, [str(scope) for scope in scopes], client,
                                   KeyLimits(requests_per_minute, daily_tokens)),
            lambda created: CreatedApiKey(api_key=ApiKeyType.of(created.key), secret=created.secret),
        )

    @strawberry.mutation(extensions=signed_in(), description="Revoke a key of a workspace you manage keys in.")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKeyResult:
        services, client, principal = await caller(info)
        revoke = services.revoke_api_key()
        return await answer(lambda: revoke.execute(principal, parse_id(id, "id"), client), ApiKeyType.of)

    @strawberry.mutation(extensions=require(Permission.USERS_MANAGE), description="Admins: grant or withdraw admin.")
    async def set_user_role(self, info: Info, user_id: strawberry.ID, role: RoleEnum) -> UserResult:
        services, client, principal = await caller(info)
        set_role = services.set_user_role()
        return await answer(lambda: set_role.execute(principal, parse_id(user_id, "userId"), role, client), UserType.of)
