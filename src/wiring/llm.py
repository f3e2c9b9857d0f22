"""Model-call wiring: the providers behind the chain, prompts, token counting, breakers, and the one
service every domain calls models through."""

from __future__ import annotations

from dependency_injector import providers

from src.adapters.llm.models import ModelRegistry, ProviderKeys
from src.adapters.llm.prompts import FilePromptLibrary
from src.adapters.llm.tokens import TiktokenCounter
from src.config import Settings
from src.core.llm.calls import ModelCalls
from src.core.llm.resilience import Breakers
from src.ports.models import CallSettings
from src.wiring.foundation import Foundation


def call_settings(settings: Settings) -> CallSettings:
    return CallSettings(
        models=tuple(settings.chat_models.split(",")), max_attempts=settings.chat_max_attempts,
        retry_base_seconds=settings.chat_retry_base_seconds, retry_max_seconds=settings.chat_retry_max_seconds,
        breaker_failures=settings.chat_breaker_failures,
        breaker_cooldown_seconds=settings.chat_breaker_cooldown_seconds,
        first_token_timeout_seconds=settings.chat_first_token_timeout_seconds,
        user_daily_tokens=settings.chat_user_daily_tokens)


def chat_models(settings: Settings) -> ModelRegistry:
    keys = ProviderKeys(settings.openai_api_key, settings.openai_base_url, settings.anthropic_api_key,
                        settings.anthropic_base_url, settings.chat_request_timeout_seconds)
    return ModelRegistry(keys, settings.chat_model_table)


class LlmWiring(Foundation):
    calling = providers.Singleton(call_settings, Foundation.settings)
    chat_models = providers.Singleton(chat_models, Foundation.settings)
    prompts = providers.Singleton(FilePromptLibrary)
    token_counter = providers.Singleton(TiktokenCounter)
    breakers = providers.Singleton(Breakers, calling, Foundation.telemetry)
    model_calls = providers.Singleton(ModelCalls, chat_models, breakers, calling, Foundation.clock,
                                      Foundation.telemetry)
