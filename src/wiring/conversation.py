"""Conversation wiring: answers (retrieval through knowledge's search, models through the model-call
service), their live buffers, checkpoints and recovery, and the conversation use cases."""

from __future__ import annotations

from dependency_injector import providers

from src.config import Settings
from src.core.conversation import conversations as convs
from src.core.conversation.chat import SendMessage
from src.core.conversation.live import LiveAnswers
from src.core.conversation.progress import (
    FollowMessage,
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


class ConversationWiring(KnowledgeWiring):
    chat = providers.Singleton(chat_settings, W.settings)
    live_answers = providers.Singleton(LiveAnswers, W.settings.provided.chat_resume_grace_seconds)
    retriever = providers.Factory(KnowledgeRetriever, W.search,
                                  providers.Callable(SearchMode, W.settings.provided.chat_retrieval_mode))
    send_message = providers.Factory(SendMessage, W.uow.provider, W.read_uow.provider, W.entitlements, retriever,
                                     W.model_calls, W.prompts, W.token_counter, live_answers, W.clock, chat, W.access)
    save_answer_progress = providers.Factory(SaveAnswerProgress, W.uow.provider, live_answers, W.clock)
    stop_answer = providers.Factory(StopAnswer, W.uow.provider, live_answers, W.clock, W.access)
    recover_stalled_answers = providers.Factory(RecoverStalledAnswers, W.uow.provider, W.chat_models,
                                                W.token_counter, W.clock, chat)
    follow_message = providers.Factory(FollowMessage, W.read_uow.provider, live_answers, recover_stalled_answers,
                                       W.clock, chat, W.access)
    create_conversation = providers.Factory(convs.CreateConversation, W.uow.provider, W.clock, W.access)
    list_conversations = providers.Factory(convs.ListConversations, W.uow.provider, W.clock, W.access)
    get_conversation = providers.Factory(convs.GetConversation, W.uow.provider, W.clock, W.access)
    get_message = providers.Factory(convs.GetMessage, W.uow.provider, W.clock, W.access)
    rename_conversation = providers.Factory(convs.RenameConversation, W.uow.provider, W.clock, W.access)
    delete_conversation = providers.Factory(convs.DeleteConversation, W.uow.provider, W.clock, W.access)
    usage_report = providers.Factory(convs.UsageReport, W.uow.provider, W.clock, W.access)
    suggest_title = providers.Factory(convs.SuggestTitle, W.uow.provider, W.entitlements, W.model_calls, W.prompts,
                                      W.clock, W.access)
