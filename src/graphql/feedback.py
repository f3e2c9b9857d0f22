"""Feedback and analytics fields: rate an answer (its owner), export the ratings and read the answers'
analytics (the workspace's owners and admins)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry

from src.graphql.context import Info
from src.graphql.conversation import MessageResult, WorkspaceId
from src.graphql.conversation_types import MessageType, RatingEnum
from src.graphql.errors import InvalidInputError, UnavailableError, answer
from src.graphql.ids import parse_id
from src.graphql.permissions import require
from src.ports.conversation import AnswerAnalytics, RatedAnswer, Rating
from src.ports.identity import Permission


@strawberry.type(name="RatedAnswer")
class RatedAnswerType:
    message_id: strawberry.ID
    conversation_id: strawberry.ID
    template: str | None = strawberry.field(description="prompt template as name@version")
    model: str | None
    rating: RatingEnum
    comment: str | None
    rated_at: datetime

    @classmethod
    def of(cls, row: RatedAnswer) -> RatedAnswerType:
        return cls(message_id=strawberry.ID(str(row.message_id)),
                   conversation_id=strawberry.ID(str(row.conversation_id)), template=row.template, model=row.model,
                   rating=RatingEnum(row.rating), comment=row.comment, rated_at=row.rated_at)


@strawberry.type
class FeedbackExport:
    answers: list[RatedAnswerType]


@strawberry.type
class AnswerDay:
    day: date
    model: str
    template: str
    answers: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@strawberry.type(name="ModelLatency")
class ModelLatencyType:
    model: str
    answers: int
    ttft_p50_ms: float
    ttft_p95_ms: float


@strawberry.type(name="TemplateFeedback")
class TemplateFeedbackType:
    template: str
    up: int
    down: int

    @strawberry.field(description="up / (up + down)")
    def up_ratio(self) -> float:
        return self.up / (self.up + self.down) if self.up + self.down else 0.0


@strawberry.type(name="AnswerAnalytics")
class AnswerAnalyticsType:
    days: list[AnswerDay]
    latency: list[ModelLatencyType]
    feedback: list[TemplateFeedbackType]

    @classmethod
    def of(cls, found: AnswerAnalytics) -> AnswerAnalyticsType:
        return cls(days=[AnswerDay(**vars_of(day)) for day in found.days],
                   latency=[ModelLatencyType(**vars_of(row)) for row in found.latency],
                   feedback=[TemplateFeedbackType(**vars_of(row)) for row in found.feedback])


def vars_of(record: object) -> dict:
    return {name: getattr(record, name) for name in record.__slots__}  # type: ignore[attr-defined]


FeedbackResult = Annotated[FeedbackExport | InvalidInputError | UnavailableError, strawberry.union("FeedbackResult")]
AnalyticsResult = Annotated[AnswerAnalyticsType | InvalidInputError | UnavailableError,
                            strawberry.union("AnswerAnalyticsResult")]


@strawberry.type
class FeedbackQuery:
    @strawberry.field(extensions=require(Permission.WORKSPACE_MANAGE, "workspace_id"),
                      description="Rated answers of the last `days`, newest first, optionally of one template "
                                  "version (rag_answer@2): owners and admins.")
    async def answer_feedback(self, info: Info, workspace_id: WorkspaceId, days: int = 30,
                              template: str | None = None, limit: int = 1000) -> FeedbackResult:
        caller, export = await info.context.principal(), info.context.services.export_feedback()
        return await answer(lambda: export.execute(caller, parse_id(workspace_id, "workspaceId"), days, template,
                                                   limit),
                            lambda rows: FeedbackExport(answers=[RatedAnswerType.of(row) for row in rows]))

    @strawberry.field(extensions=require(Permission.WORKSPACE_MANAGE, "workspace_id"),
                      description="The answers of the last `days`: cost and tokens per day x model x template "
                                  "version, time to first token per model, ratings per template version.")
    async def answer_analytics(self, info: Info, workspace_id: WorkspaceId, days: int = 30) -> AnalyticsResult:
        caller, report = await info.context.principal(), info.context.services.answer_analytics()
        return await answer(lambda: report.execute(caller, parse_id(workspace_id, "workspaceId"), days),
                            AnswerAnalyticsType.of)


@strawberry.type
class FeedbackMutation:
    @strawberry.mutation(extensions=require(Permission.CONTENT_READ, "workspace_id"),
                         description="Rate an answer of your own conversation (again: the rating is replaced).")
    async def rate_answer(self, info: Info, workspace_id: WorkspaceId, message_id: strawberry.ID,
                          rating: RatingEnum, comment: str | None = None) -> MessageResult:
        caller, rate = await info.context.principal(), info.context.services.rate_answer()
        return await answer(lambda: rate.execute(caller, parse_id(workspace_id, "workspaceId"),
                                                 parse_id(message_id, "messageId"), Rating(rating.value), comment),
                            MessageType.of)
