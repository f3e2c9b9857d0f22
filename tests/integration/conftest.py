"""Conversation fixtures: the local OpenAI and Anthropic servers, and containers configured to use them."""

from __future__ import annotations

import pytest

from src.container import build_container, shutdown
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.openai_api import FakeOpenAI


@pytest.fixture
def fakes():
    openai_fake, anthropic_fake = FakeOpenAI(), FakeAnthropic()
    with openai_fake.serve() as openai_served, anthropic_fake.serve() as anthropic_served:
        openai_fake.url, anthropic_fake.url = openai_served.url + "/v1", anthropic_served.url
        yield openai_fake, anthropic_fake


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
