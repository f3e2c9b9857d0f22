"""The permission policy, as a table."""

from __future__ import annotations

import uuid

import pytest

from src.core.identity.policy import is_allowed
from src.ports.identity import Permission, Principal, Role, WorkspaceRole

USER = Principal(uuid.uuid4(), Role.USER, session_id=uuid.uuid4())
ADMIN = Principal(uuid.uuid4(), Role.ADMIN, session_id=uuid.uuid4())
HOME = uuid.uuid4()
KEY = Principal(USER.user_id, Role.USER, api_key_id=uuid.uuid4(), key_workspace_id=HOME,
                key_scopes=frozenset({Permission.CONTENT_READ, Permission.WORKSPACE_READ}))
OWNER, MEMBER = WorkspaceRole.OWNER, WorkspaceRole.MEMBER


@pytest.mark.parametrize(
    ("principal", "permission", "membership", "workspace", "allowed"),
    [
        (USER, Permission.ACCOUNT, None, None, True),
        (USER, Permission.AUDIT_READ, None, None, False),
        (ADMIN, Permission.AUDIT_READ, None, None, True),
        (ADMIN, Permission.CONTENT_READ, None, HOME, False),  # admins see no tenant data without membership
        (USER, Permission.CONTENT_WRITE, MEMBER, HOME, True),
        (USER, Permission.WORKSPACE_MANAGE, MEMBER, HOME, False),
        (USER, Permission.API_KEYS_MANAGE, OWNER, HOME, True),
        (USER, Permission.CONTENT_READ, None, HOME, False),
        (KEY, Permission.CONTENT_READ, OWNER, HOME, True),
        (KEY, Permission.CONTENT_WRITE, OWNER, HOME, False),  # outside its scopes
        (KEY, Permission.CONTENT_READ, OWNER, uuid.uuid4(), False),  # outside its workspace
        (KEY, Permission.CONTENT_READ, None, HOME, False),  # its maker left the workspace
        (KEY, Permission.ACCOUNT, OWNER, None, False),  # keys act on workspace data only
    ],
)
def test_policy(principal, permission, membership, workspace, allowed):
    assert is_allowed(principal, permission, membership, workspace) is allowed
