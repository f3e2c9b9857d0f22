"""Answer analytics and the feedback export, computed in SQL over a workspace's answers (messages joined to
their conversations; the conversations' workspace index narrows them)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.ports.conversation import AnswerAnalytics, DailyAnswers, ModelLatency, RatedAnswer, TemplateFeedback

_ANSWERS = """FROM messages m JOIN conversations c ON c.id = m.conversation_id
    WHERE c.workspace_id = :workspace_id AND m.role = 'assistant' AND m.created_at >= :since"""
_DAYS = text(f"""
    SELECT (m.created_at AT TIME ZONE 'UTC')::date AS day, m.model, coalesce(m.template, '') AS template,
           count(*), sum(m.prompt_tokens), sum(m.completion_tokens), sum(m.cost_usd)
    {_ANSWERS} AND m.model IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""")
_LATENCY = text(f"""
    SELECT m.model, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY m.ttft_ms),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY m.ttft_ms)
    {_ANSWERS} AND m.model IS NOT NULL AND m.ttft_ms IS NOT NULL GROUP BY 1 ORDER BY 1""")
_FEEDBACK = text(f"""
    SELECT coalesce(m.template, ''), count(*) FILTER (WHERE m.rating = 'up'), count(*) FILTER (WHERE m.rating = 'down')
    {_ANSWERS} AND m.rating IS NOT NULL GROUP BY 1 ORDER BY 1""")
_RATED = text(f"""
    SELECT m.id, m.conversation_id, m.template, m.model, m.rating, m.rating_comment, m.rated_at
    {_ANSWERS} AND m.rating IS NOT NULL AND (CAST(:template AS text) IS NULL OR m.template = :template)
    ORDER BY m.rated_at DESC LIMIT :limit""")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


class PgAnswerAnalytics:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def analytics(self, workspace_id: UUID, since: date) -> AnswerAnalytics:
        where = {"workspace_id": workspace_id, "since": _midnight(since)}
        days = (await self._session.execute(_DAYS, where)).all()
        latency = (await self._session.execute(_LATENCY, where)).all()
        feedback = (await self._session.execute(_FEEDBACK, where)).all()
        return AnswerAnalytics(
            tuple(DailyAnswers(day, model, template, int(n), int(prompt), int(completion), float(cost))
                  for day, model, template, n, prompt, completion, cost in days),
            tuple(ModelLatency(model, int(n), float(p50), float(p95)) for model, n, p50, p95 in latency),
            tuple(TemplateFeedback(template, int(up), int(down)) for template, up, down in feedback))

    async def rated(self, workspace_id: UUID, template: str | None, since: date, limit: int) -> list[RatedAnswer]:
        rows = await self._session.execute(_RATED, {"workspace_id": workspace_id, "since": _midnight(since),
                                                    "template": template, "limit": limit})
        return [RatedAnswer(*row) for row in rows.all()]
