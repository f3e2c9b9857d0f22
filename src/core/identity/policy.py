"""The one permission policy: what a principal may do, globally or inside a workspace."""

from __future__ import annotations

from uuid import UUID

from src.ports.identity import WORKSPACE_PERMISSIONS, Permission, Principal, Role, WorkspaceRole

ROLE_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.USER: frozenset({Permission.ACCOUNT, Permission.WORKSPACE_CREATE}),
    Role.ADMIN: frozenset(
        {Permission.ACCOUNT, Permission.WORKSPACE_CREATE, Permission.AUDIT_READ, Permission.USERS_MANAGE,
         Permission.SYSTEM_OPERATE, Permission.BILLING_ADMIN}
    ),
}

WORKSPACE_ROLE_GRANTS: dict[WorkspaceRole, frozenset[Permission]] = {
    WorkspaceRole.OWNER: WORKSPACE_PERMISSIONS,
    WorkspaceRole.MEMBER: frozenset({Permission.WORKSPACE_READ, Permission.CONTENT_READ, Permission.CONTENT_WRITE}),
}


def is_allowed(principal: Principal, permission: Permission, membership: WorkspaceRole | None = None,
               workspace_id: UUID | None = None) -> bool:
    """`membership` is the principal's user's role in the workspace concerned (None: not a member).

    An API key can do only what its scopes say, only in its own workspace, and never more than the
    user who made it can still do there.
    """
    if principal.api_key_id is not None:
        if permission not in (principal.key_scopes or frozenset()) or permission not in WORKSPACE_PERMISSIONS:
            return False
        if workspace_id != principal.key_workspace_id:
            return False
    if permission in WORKSPACE_PERMISSIONS:
        return membership is not None and permission in WORKSPACE_ROLE_GRANTS[membership]
    return permission in ROLE_GRANTS[principal.role]


def grantable_scopes(membership: WorkspaceRole) -> frozenset[Permission]:
    return WORKSPACE_ROLE_GRANTS[membership]
