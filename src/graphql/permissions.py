"""The one mechanism that guards every GraphQL root field: a `Requires` (or `Public`) permission on each,
checked by the core policy through the Authorize use case. A root field without one fails schema build."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from graphql import GraphQLError
from src.graphql.masking import domain_error
from src.ports.context import bind_context
from src.ports.edge import RateLimited
from src.ports.identity import Forbidden, Permission, Unauthenticated
from src.ports.shared import StorageUnavailable


class AccessDenied(GraphQLError):
    """Shown to clients as is (never masked): `extensions.code` is UNAUTHENTICATED, FORBIDDEN, or UNAVAILABLE
    when the caller could not be checked (the database is unreachable or busy): retry later."""


class Public(BasePermission):
    message = "public"

    def has_permission(self, source: Any, info, **kwargs: Any) -> bool:
        return True


class Requires(BasePermission):
    message = "access denied"

    def __init__(self, permission: Permission | None, workspace_arg: str | None = None) -> None:
        """`permission=None`: any signed-in caller; the use case then checks the object it touches."""
        self.permission = permission
        self.workspace_arg = workspace_arg

    async def has_permission(self, source: Any, info, **kwargs: Any) -> bool:
        context = info.context
        try:
            principal = await context.principal()
            workspace_id = _workspace_id(kwargs, self.workspace_arg) if self.workspace_arg else None
            if principal is None:
                raise Unauthenticated("sign in first")
            if self.permission is not None:
                await context.services.access().require(principal, self.permission, workspace_id)
            if workspace_id is not None:  # authorised there: the workspace's quota pays for the field
                bind_context(workspace_id=workspace_id)
                context.note_rate(await context.services.admission().workspace(workspace_id, info.field_name))
        except RateLimited as exc:
            context.note_rate(exc.decision)
            raise domain_error(exc) from None
        except Unauthenticated as exc:
            raise AccessDenied(str(exc), extensions={"code": "UNAUTHENTICATED"}) from None
        except Forbidden as exc:
            raise AccessDenied(str(exc), extensions={"code": "FORBIDDEN"}) from None
        except StorageUnavailable as exc:
            raise AccessDenied(str(exc), extensions={"code": "UNAVAILABLE"}) from None
        return True


def _workspace_id(arguments: dict, name: str) -> UUID:
    try:
        return UUID(str(arguments.get(name)))
    except ValueError:
        raise Forbidden("no such workspace, or no access to it") from None


def guard(*permissions: BasePermission) -> list[FieldExtension]:
    return [PermissionExtension(permissions=list(permissions), use_directives=False)]


def public() -> list[FieldExtension]:
    return guard(Public())


def require(permission: Permission, workspace_arg: str | None = None) -> list[FieldExtension]:
    return guard(Requires(permission, workspace_arg))


def signed_in() -> list[FieldExtension]:
    return guard(Requires(None))


def unguarded_root_fields(schema) -> list[str]:
    """Root fields that carry no Requires/Public: the schema refuses to start with any."""
    missing = []
    for root in (schema.query, schema.mutation, schema.subscription):
        if root is None:
            continue
        definition = root.__strawberry_definition__
        for field in definition.fields:
            guarded = any(
                isinstance(extension, PermissionExtension)
                and any(isinstance(p, Public | Requires) for p in extension.permissions)
                for extension in field.extensions
            )
            if not guarded:
                missing.append(f"{definition.name}.{field.python_name}")
    return missing
