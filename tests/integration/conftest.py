"""Conversation fixtures: containers configured to use the local OpenAI and Anthropic servers (`fakes`)."""

from __future__ import annotations

import pytest

from src.container import build_container, shutdown


@pytest.fixture
async def configure(settings, fakes):
    containers = []

    def build(**extra):
        openai_fake, anthropic_fake = fakes
        container = build_container(settings.model_copy(update={
            "openai_api_key": openai_fake.api_key, "openai_base_url": openai_fake.url,
            "anthropic_api_key": anthropic_fake.api_key, "anthropic_base_url": anthropic_fake.url,
            "chat_retry_base_seconds": 0.01, **extra}))
        containers.append(container)
        return container

    yield build
    for container in containers:
        await container.live_answers().stop_all()
        await shutdown(container)
