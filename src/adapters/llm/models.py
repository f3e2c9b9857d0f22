"""Which provider serves each model Keel names, its context window and price (USD per million tokens).
Built-in entries can be changed or extended with KEEL_CHAT_MODEL_TABLE (JSON); a model whose provider has
no key on this server has no route, so fallback chains skip it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from src.adapters.llm.anthropic_chat import AnthropicChat
from src.adapters.llm.offline import OfflineChat
from src.adapters.llm.openai_chat import OpenAIChat
from src.ports.models import ChatProvider, ModelRoute

BUILT_IN = {
    "claude-sonnet-4-6": {"provider": "anthropic", "context_tokens": 200_000, "input": 3.0, "output": 15.0},
    "claude-haiku-4-5": {"provider": "anthropic", "context_tokens": 200_000, "input": 1.0, "output": 5.0},
    "gpt-4o": {"provider": "openai", "context_tokens": 128_000, "input": 2.5, "output": 10.0},
    "gpt-4o-mini": {"provider": "openai", "context_tokens": 128_000, "input": 0.15, "output": 0.6},
    "offline": {"provider": "offline", "context_tokens": 100_000, "input": 0.0, "output": 0.0},
}


@dataclass(frozen=True, slots=True)
class ProviderKeys:
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    timeout_seconds: float = 60.0


def model_table(overrides_json: str | None) -> dict[str, dict]:
    table = {name: dict(entry) for name, entry in BUILT_IN.items()}
    if overrides_json:
        try:
            extra = json.loads(overrides_json)
            for name, entry in extra.items():
                table[name] = {**table.get(name, {}), **entry}
                for key in ("provider", "context_tokens", "input", "output"):
                    if key not in table[name]:
                        raise KeyError(key)
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            raise ValueError(f"the chat model table is not {{model: {{provider, context_tokens, input, output}}}}: "
                             f"{exc}") from None
    return table


class ModelRegistry:
    def __init__(self, keys: ProviderKeys, overrides_json: str | None = None) -> None:
        self._table = model_table(overrides_json)
        self._providers: dict[str, ChatProvider] = {"offline": OfflineChat()}
        if keys.openai_api_key:
            self._providers["openai"] = OpenAIChat(keys.openai_api_key, keys.openai_base_url, keys.timeout_seconds)
        if keys.anthropic_api_key:
            self._providers["anthropic"] = AnthropicChat(keys.anthropic_api_key, keys.anthropic_base_url,
                                                         keys.timeout_seconds)

    async def aclose(self) -> None:
        """Closes the providers' HTTP sessions (at shutdown)."""
        for provider in self._providers.values():
            if hasattr(provider, "aclose"):
                await provider.aclose()

    def route(self, model: str) -> ModelRoute | None:
        entry = self._table.get(model)
        provider = self._providers.get(entry["provider"]) if entry else None
        if provider is None:
            return None
        return ModelRoute(model, provider, entry.get("provider_model", model), int(entry["context_tokens"]),
                          float(entry["input"]), float(entry["output"]))
