"""Identity figures (printed, never asserted): sign-in latency through the API (argon2id dominates), and
what verifying a caller costs per request (JWT signature + session and user lookups), with the JWT
verification alone for comparison.

Run: ./keel test benchmarks -k identity
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from src.container import build_container, shutdown
from src.main import create_app
from src.ports.identity import ClientInfo

PASSWORD = "benchmark password 123"
SIGN_IN = "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { __typename } }"


@pytest.fixture
def world(settings):
    loop = asyncio.new_event_loop()
    services = build_container(settings)
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    tokens = loop.run_until_complete(services.sign_up().execute(email, PASSWORD, "", ClientInfo()))
    app = create_app(settings, services)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.9.9.9", 1)), base_url="http://b")
    yield loop, services, client, email, tokens.access_token
    loop.run_until_complete(client.aclose())
    loop.run_until_complete(shutdown(services))
    loop.close()


def test_sign_in_latency_through_the_api(benchmark, world):
    loop, _, client, email, _ = world

    def sign_in():
        response = loop.run_until_complete(
            client.post("/graphql", json={"query": SIGN_IN, "variables": {"e": email, "p": PASSWORD}}))
        assert response.json()["data"]["signIn"]["__typename"] == "AuthPayload"

    benchmark.pedantic(sign_in, rounds=20, iterations=1, warmup_rounds=2)


def test_caller_verification_per_request(benchmark, world):
    loop, services, _, _, token = world
    authenticate = services.authenticate()
    benchmark(lambda: loop.run_until_complete(authenticate.execute(token)))


def test_jwt_signature_check_alone(benchmark, world):
    loop, services, _, _, token = world
    codec = services.token_codec()
    benchmark(lambda: loop.run_until_complete(codec.decode(token)))
