"""GraphQL types of the identity domain, mapped from port records at the edge."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from src.graphql.context import Info
from src.graphql.permissions import AccessDenied
from src.ports import identity as records

RoleEnum = strawberry.enum(records.Role, name="Role")
WorkspaceRoleEnum = strawberry.enum(records.WorkspaceRole, name="WorkspaceRole")
PermissionEnum = strawberry.enum(records.Permission, name="Permission")


@strawberry.type
class Ok:
    ok: bool = True


@strawberry.type(name="Member")
class MemberType:
    user_id: strawberry.ID
    email: str
    display_name: str
    role: WorkspaceRoleEnum
    since: datetime

    @classmethod
    def of(cls, membership: records.Membership, user: records.User) -> MemberType:
        return cls(user_id=strawberry.ID(str(user.id)), email=user.email, display_name=user.display_name,
                   role=membership.role, since=membership.created_at)


@strawberry.type(name="Workspace")
class WorkspaceType:
    id: strawberry.ID
    name: str
    created_at: datetime
    my_role: WorkspaceRoleEnum | None

    @classmethod
    def of(cls, workspace: records.Workspace, role: records.WorkspaceRole | None = None) -> WorkspaceType:
        return cls(id=strawberry.ID(str(workspace.id)), name=workspace.name, created_at=workspace.created_at,
                   my_role=role)

    @strawberry.field(description="Members of the workspace (any member may list them).")
    async def members(self, info: Info) -> list[MemberType]:
        principal = await info.context.principal()
        found = await info.context.services.list_members().execute(principal, UUID(self.id))
        return [MemberType.of(membership, user) for membership, user in found]


@strawberry.type(name="User")
class UserType:
    id: strawberry.ID
    email: str
    display_name: str
    role: RoleEnum
    email_verified: bool
    created_at: datetime
    # Who may see this user's workspaces: the user just signed in (no caller yet), else the caller.
    viewer: strawberry.Private[records.Principal | None] = None

    @classmethod
    def of(cls, user: records.User, viewer: records.Principal | None = None) -> UserType:
        return cls(id=strawberry.ID(str(user.id)), email=user.email, display_name=user.display_name,
                   role=user.role, email_verified=user.email_verified, created_at=user.created_at, viewer=viewer)

    @strawberry.field(description="The workspaces this user belongs to (only the user sees them).")
    async def workspaces(self, info: Info) -> list[WorkspaceType]:
        viewer = self.viewer or await info.context.principal()
        if viewer is None or str(viewer.user_id) != self.id:
            raise AccessDenied("only the user can list their workspaces", extensions={"code": "FORBIDDEN"})
        found = await info.context.services.list_workspaces().execute(viewer)
        return [WorkspaceType.of(workspace, role) for workspace, role in found]


@strawberry.type
class AuthPayload:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime
    user: UserType

    @classmethod
    def of(cls, tokens) -> AuthPayload:
        return cls(access_token=tokens.access_token, access_token_expires_at=tokens.access_expires_at,
                   refresh_token=tokens.refresh_token, refresh_token_expires_at=tokens.refresh_expires_at,
                   user=UserType.of(tokens.user, records.Principal(tokens.user.id, tokens.user.role,
                                                                   session_id=tokens.session_id)))


@strawberry.type(name="ApiKey")
class ApiKeyType:
    id: strawberry.ID
    workspace_id: strawberry.ID
    name: str
    prefix: str
    scopes: list[PermissionEnum]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    requests_per_minute: int | None = strawberry.field(description="Its own rate limit in request units per "
                                                                   "minute; null = the default for keys.")
    daily_tokens: int | None = strawberry.field(description="Its own daily model budget; null = only the "
                                                            "workspace's plan limits it.")

    @classmethod
    def of(cls, key: records.ApiKey) -> ApiKeyType:
        return cls(id=strawberry.ID(str(key.id)), workspace_id=strawberry.ID(str(key.workspace_id)), name=key.name,
                   prefix=key.prefix, scopes=sorted(key.scopes), created_at=key.created_at,
                   last_used_at=key.last_used_at, revoked_at=key.revoked_at,
                   requests_per_minute=key.requests_per_minute, daily_tokens=key.daily_tokens)


@strawberry.type
class CreatedApiKey:
    api_key: ApiKeyType
    secret: str = strawberry.field(description="The key itself. Shown this once; Keel keeps only its hash.")


@strawberry.type(name="AuditEvent")
class AuditEventType:
    id: strawberry.ID
    at: datetime
    action: str
    actor_id: strawberry.ID | None
    subject: str
    client_ip: str
    user_agent: str
    details: JSON

    @classmethod
    def of(cls, event: records.AuditEvent) -> AuditEventType:
        return cls(id=strawberry.ID(str(event.id)), at=event.at, action=event.action,
                   actor_id=strawberry.ID(str(event.actor_id)) if event.actor_id else None, subject=event.subject,
                   client_ip=event.client_ip, user_agent=event.user_agent, details=event.details)


@strawberry.type
class OAuthStartPayload:
    authorization_url: str
    state: str

