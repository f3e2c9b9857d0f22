"""One person's data across every module's tables: exported as JSON built by Postgres, erased in the caller's
transaction. Workspaces go by their cascades (documents, chunks, vectors, graph rows, the AGE graph by its
trigger, conversations, keys, billing rows); the user row takes sessions, tokens, sign-in identities,
memberships, API keys they made and their conversations anywhere; foreign keys set to NULL unlink what stays
in shared workspaces (documents they uploaded, usage, audit entries), and the statements below scrub their
email and id from the rows that hold them as plain text."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_LIST = "SELECT coalesce(json_agg(row_to_json(item)), '[]'::json) FROM ({}) AS item"
_OBJECT = "SELECT row_to_json(item) FROM ({}) AS item"
EXPORT = {
    "profile": _OBJECT.format("SELECT id, email, display_name, role, email_verified, created_at FROM users "
                              "WHERE id = :user"),
    "workspaces": _LIST.format("SELECT w.id, w.name, m.role, m.created_at AS joined_at FROM memberships m "
                               "JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = :user ORDER BY 4"),
    "sessions": _LIST.format("SELECT created_at, expires_at, revoked_at, client_ip, user_agent FROM sessions "
                             "WHERE user_id = :user ORDER BY created_at"),
    "sign_in_identities": _LIST.format("SELECT provider, email, created_at FROM oauth_identities "
                                       "WHERE user_id = :user ORDER BY created_at"),
    "api_keys": _LIST.format("SELECT id, workspace_id, name, prefix, scopes, created_at, last_used_at, revoked_at "
                             "FROM api_keys WHERE created_by = :user ORDER BY created_at"),
    "conversations": _LIST.format(
        "SELECT c.id, c.workspace_id, c.title, c.created_at, (SELECT coalesce(json_agg(row_to_json(m) "
        "ORDER BY m.seq), '[]'::json) FROM (SELECT role, content, status, model, created_at, completed_at, "
        "sources, rating, rating_comment, seq FROM messages WHERE conversation_id = c.id) AS m) AS messages "
        "FROM conversations c WHERE c.user_id = :user ORDER BY c.created_at"),
    "documents_uploaded": _LIST.format("SELECT id, workspace_id, title, content_type, byte_size, status, "
                                       "created_at FROM documents WHERE created_by = :user ORDER BY created_at"),
    "usage": _LIST.format("SELECT day, model, channel, count(*) AS calls, sum(prompt_tokens) AS prompt_tokens, "
                          "sum(completion_tokens) AS completion_tokens, sum(cost_usd) AS cost_usd "
                          "FROM usage_records WHERE user_id = :user GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"),
    "audit": _LIST.format("SELECT at, action, subject, client_ip, user_agent FROM audit_events "
                          "WHERE actor_id = :user ORDER BY at"),
}
# before the user row goes (the cascades and SET NULLs do the rest)
ERASE = {
    "workspaces": "DELETE FROM workspaces WHERE id = ANY(:workspaces)",
    "email_outbox": "DELETE FROM email_outbox WHERE lower(recipient) = lower(:email)",
    "audit_events": "UPDATE audit_events SET subject = '' WHERE subject IN (:email, :user_text)",
    "users": "DELETE FROM users WHERE id = :user",
}
COUNTED = {  # rows that go with the user, counted before the delete: what the caller reports
    "conversations": "SELECT count(*) FROM conversations WHERE user_id = :user",
    "messages": "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                "WHERE c.user_id = :user",
    "documents": "SELECT count(*) FROM documents WHERE workspace_id = ANY(:workspaces)",
    "chunks": "SELECT count(*) FROM chunks WHERE workspace_id = ANY(:workspaces)",
    "api_keys": "SELECT count(*) FROM api_keys WHERE created_by = :user OR workspace_id = ANY(:workspaces)",
    "sessions": "SELECT count(*) FROM sessions WHERE user_id = :user",
}


class PgAccountData:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def export(self, user_id: UUID) -> dict[str, Any]:
        archive: dict[str, Any] = {}
        for part, query in EXPORT.items():
            found = (await self._session.execute(text(query), {"user": user_id})).scalar_one_or_none()
            archive[part] = json.loads(found) if isinstance(found, str) else found
        return archive

    async def erase(self, user_id: UUID, workspace_ids: list[UUID]) -> dict[str, int]:
        email = (await self._session.execute(text("SELECT email FROM users WHERE id = :user"),
                                             {"user": user_id})).scalar_one()
        values = {"user": user_id, "user_text": str(user_id), "workspaces": workspace_ids, "email": email}
        counts = {table: (await self._session.execute(text(query), values)).scalar_one()
                  for table, query in COUNTED.items()}
        for table, statement in ERASE.items():
            counts[table] = (await self._session.execute(text(statement), values)).rowcount  # type: ignore[attr-defined]
        return counts

