"""Conversation wiring: answers (retrieval through knowledge's search, models through the model-call
service), their live buffers, checkpoints and recovery, and the conversation use cases."""

from __future__ import annotations

from dependency_injector import providers

from src.adapters.live.channels import ChannelFeed
from src.adapters.live.postgres import PgAnswerFeed
from src.adapters.live.redis import RedisAnswerFeed
from src.adapters.postgres.conversation.unit_of_work import PgConversationUnitOfWork
from src.config import Settings
from src.core.conversation import conversations as convs
from src.core.conversation.chat import SendMessage
from src.core.conversation.completions import CompleteChat
from src.core.conversation.feedback import AnswerAnalyticsReport, ExportFeedback, RateAnswer
from src.core.conversation.follow import FollowMessage, RelayAnswers
from src.core.conversation.live import LiveAnswers
from src.core.conversation.progress import (
    RecoverStalledAnswers,
    SaveAnswerProgress,
    StopAnswer,
)
from src.ports.conversation import ChatSettings
from src.ports.knowledge import SearchMode
from src.wiring.knowledge import KnowledgeWiring
from src.wiring.retrieval import KnowledgeRetriever

W = KnowledgeWiring


def chat_settings(settings: Settings) -> ChatSettings:
    return ChatSettings(
        max_input_chars=settings.chat_max_input_chars, max_output_tokens=settings.chat_max_output_tokens,
        history_messages=settings.chat_history_messages, retrieval_k=settings.chat_retrieval_k,
        checkpoint_seconds=settings.chat_checkpoint_seconds, stalled_after_seconds=settings.chat_stalled_after_seconds)


def answer_feed(settings: Settings) -> ChannelFeed:
    """Between API processes: Redis pub/sub when Redis is configured, else the database's LISTEN/NOTIFY."""
    return RedisAnswerFeed(settings.redis_url) if settings.redis_url else PgAnswerFeed(settings.libpq_url())


class ConversationWiring(KnowledgeWiring):
    conversation_uow = providers.Factory(PgConversationUnitOfWork, W.session_factory, W.jobs)
    conversation_reads = providers.Factory(PgConversationUnitOfWork, W.read_session_factory, W.jobs)
    chat = providers.Singleton(chat_settings, W.settings)
    live_answers = providers.Singleton(LiveAnswers, W.settings.provided.chat_resume_grace_seconds)
    answer_feed = providers.Singleton(answer_feed, W.settings)
    relay_answers = providers.Singleton(RelayAnswers, live_answers, answer_feed, chat)
    retriever = providers.Factory(KnowledgeRetriever, W.search,
                                  providers.Callable(SearchMode, W.settings.provided.chat_retrieval_mode))
    send_message = providers.Factory(SendMessage, conversation_uow.provider, conversation_reads.provider,
                                     W.entitlements, retriever,
                                     W.model_calls, W.prompts, W.token_counter, live_answers, W.clock, chat, W.access)
    save_answer_progress = providers.Factory(SaveAnswerProgress, conversation_uow.provider, live_answers, W.clock)
    stop_answer = providers.Factory(StopAnswer, conversation_uow.provider, live_answers, answer_feed, W.clock,
                                    W.access)
    recover_stalled_answers = providers.Factory(RecoverStalledAnswers, conversation_uow.provider, W.chat_models,
                                                W.token_counter, W.clock, chat)
    follow_message = providers.Factory(FollowMessage, conversation_reads.provider, live_answers, answer_feed,
                                       recover_stalled_answers, W.clock, chat, W.access)
    create_conversation = providers.Factory(convs.CreateConversation, conversation_uow.provider, W.clock, W.access)
    list_conversations = providers.Factory(convs.ListConversations, conversation_uow.provider, W.clock, W.access)
    get_conversation = providers.Factory(convs.GetConversation, conversation_uow.provider, W.clock, W.access)
    get_message = providers.Factory(convs.GetMessage, conversation_uow.provider, W.clock, W.access)
    rename_conversation = providers.Factory(convs.RenameConversation, conversation_uow.provider, W.clock, W.access)
    delete_conversation = providers.Factory(convs.DeleteConversation, conversation_uow.provider, W.clock, W.access)
    usage_report = providers.Factory(convs.UsageReport, conversation_uow.provider, W.clock, W.access)
    suggest_title = providers.Factory(convs.SuggestTitle, conversation_uow.provider, W.entitlements, W.model_calls,
                                      W.prompts, W.clock, W.access)
    rate_answer = providers.Factory(RateAnswer, conversation_uow.provider, W.clock, W.access, W.telemetry)
    export_feedback = providers.Factory(ExportFeedback, conversation_reads.provider, W.clock, W.access)
    answer_analytics = providers.Factory(AnswerAnalyticsReport, conversation_reads.provider, W.clock, W.access)
    complete_chat = providers.Factory(CompleteChat, conversation_uow.provider, W.entitlements, W.model_calls,
                                      W.token_counter, chat, W.access)
