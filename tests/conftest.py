"""Shared fixtures: a migrated test database on the real local Postgres, the container, the ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from src.cli.migrate import upgrade
from src.config import REPO_ROOT, Settings, load_settings
from src.container import Container, build_container, shutdown
from src.localdb.stack import ensure_database_running
from src.main import create_app
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.openai_api import FakeOpenAI
from tests.net import free_port

# Hashing stays argon2id, at its cheapest: the suite signs up hundreds of accounts and none of its tests is
# about the hash's cost (the rehash test brings a stronger hasher of its own).
CHEAP_HASHING = {"password_hash_memory_kib": 1_024, "password_hash_time_cost": 1}


def _test_settings() -> Settings:
    base = load_settings(**CHEAP_HASHING)
    if not base.embedded_database:
        return base  # KEEL_DATABASE_URL must then name a throwaway database
    name = f"{base.db_name}_test"
    ensure_database_running(base, name, lambda message: None, fast_commit=True)
    return load_settings(db_name=name, **CHEAP_HASHING)


@pytest.fixture(scope="session")
def settings() -> Settings:
    config = _test_settings()
    upgrade(config)
    return config


def fresh_database(settings: Settings, suffix: str, *, migrate: bool = True) -> Settings:
    """A database of its own, emptied first: for tests that change global state (the active embedding
    space) or move the schema. Needs the local cluster."""
    if not settings.embedded_database:
        pytest.skip("needs the local cluster to create a scratch database")
    from src.localdb.stack import local_cluster

    name = f"{settings.db_name}_{suffix}"
    cluster = local_cluster(settings, install=False)
    cluster.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    cluster.ensure_database(name, fast_commit=True)
    fresh = settings.model_copy(update={"db_name": name})
    if migrate:
        upgrade(fresh)
    return fresh


@pytest.fixture(scope="session")
def test_env(settings: Settings) -> dict[str, str]:
    """Environment for child processes (workers, the CLI) that must use the test database."""
    env = {**os.environ, **{f"KEEL_{name.upper()}": str(value) for name, value in CHEAP_HASHING.items()},
           "KEEL_WORKER_METRICS_PORT": "0"}  # a test that reads the workers' metrics gives them a free port
    if settings.embedded_database:
        env["KEEL_DB_NAME"] = settings.db_name
    return env


@pytest.fixture(scope="session")
async def container(settings: Settings) -> AsyncIterator[Container]:
    services = build_container(settings)
    yield services
    await shutdown(services)


def random_address() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def ws_transport(app):
    """A websocket-capable transport into the ASGI app, from its own client address."""
    from httpx_ws.transport import ASGIWebSocketTransport

    return ASGIWebSocketTransport(app=app, client=(random_address(), 1))


def asgi_client(app, ip: str | None = None) -> httpx.AsyncClient:
    """An HTTP client into the ASGI app, from its own client address (throttling is per address)."""
    transport = httpx.ASGITransport(app=app, client=(ip or random_address(), 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://keel.test", headers={"user-agent": "keel-tests"})


# for tests of something else that send more than a caller's quota
NO_RATE_LIMITS = {"rate_anonymous_per_minute": 0, "rate_user_per_minute": 0, "rate_api_key_per_minute": 0,
                  "rate_process_per_second": 0}


@contextlib.asynccontextmanager
async def keel_app(settings: Settings, **changes: object):
    """The ASGI app on a container of its own, for settings the services read (rate limits, pools, …)."""
    changed = settings.model_copy(update=changes)
    services = build_container(changed)
    try:
        yield create_app(changed, services)
    finally:
        await shutdown(services)


@pytest.fixture
async def client(settings: Settings, container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(settings, container)) as http:
        yield http


def start_worker(env: dict[str, str], threads: int = 2, output=subprocess.DEVNULL) -> subprocess.Popen:
    """A real Dramatiq worker process (`keel worker`'s command) with the given environment."""
    from src.cli.serve import worker_command, worker_environment

    command = worker_command(load_settings(worker_processes=1, worker_threads=threads,
                                           worker_metrics_port=int(env.get("KEEL_WORKER_METRICS_PORT", "0"))))
    return subprocess.Popen(command, cwd=REPO_ROOT, env=worker_environment(env), stdout=output, stderr=output,
                            start_new_session=True)


def stop_worker(process: subprocess.Popen) -> None:
    from src.cli.serve import stop_worker_process

    stop_worker_process(process)


@pytest.fixture
def fakes():
    """The local OpenAI and Anthropic servers, with `url` for each SDK."""
    openai_fake, anthropic_fake = FakeOpenAI(), FakeAnthropic()
    with openai_fake.serve() as openai_served, anthropic_fake.serve() as anthropic_served:
        openai_fake.url, anthropic_fake.url = openai_served.url + "/v1", anthropic_served.url
        yield openai_fake, anthropic_fake


@pytest.fixture
def fake_openai():
    """The local OpenAI server, with `base_url` for the SDK."""
    fake = FakeOpenAI()
    with fake.serve() as served:
        fake.base_url = served.url + "/v1"
        yield fake


@pytest.fixture
def fake_stripe():
    """The local Stripe API server, with its `url` for the SDK."""
    from tests.fakes.stripe_api import FakeStripe

    fake = FakeStripe()
    with fake.serve() as served:
        fake.url = served.url
        yield fake


@pytest.fixture
def worker_process(test_env: dict[str, str]):
    process = start_worker(test_env)
    yield process
    stop_worker(process)


@pytest.fixture(scope="session")
def redis_url():
    """A throwaway Redis server on loopback."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (`keel test` installs it as root)")
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, timeout=30)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=30)


def healthy(base: str, path: str = "/healthz") -> bool:
    try:
        return httpx.get(f"{base}{path}", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def keel_serve(env: dict[str, str], output=subprocess.DEVNULL) -> Iterator[tuple[str, subprocess.Popen]]:
    """`keel serve` in its own process, healthy: yields its base URL and the process (stopped at the end)."""
    port = int(env.get("KEEL_PORT") or free_port())  # a test that must know the port first passes it
    # every test's server sees its clients at 127.0.0.1: sign-ups per address are not what these tests are about
    env = {"KEEL_SIGN_UPS_PER_ADDRESS_HOURLY": "0", **env, "KEEL_PORT": str(port)}
    api = subprocess.Popen([sys.executable, "-m", "src.cli", "serve"], cwd=REPO_ROOT, env=env, stdout=output,
                           stderr=output, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(base) or api.poll() is not None, timeout=120, interval=0.3)
        assert api.poll() is None, "keel serve exited at start"
        yield base, api
    finally:
        if api.poll() is None:
            api.terminate()
        api.wait(timeout=30)


def run_keel(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The `keel` command line as a person runs it."""
    return subprocess.run([sys.executable, "-m", "src.cli", *args], cwd=REPO_ROOT, env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


async def graphql(client: httpx.AsyncClient, query: str, *, token: str | None = None,
                  headers: dict[str, str] | None = None, **variables) -> dict:
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=sent)
    assert response.status_code == 200, response.text
    return response.json()


async def subscription_updates(app, query: str, token: str, field: str, timeout: float = 90,
                               **variables) -> list[dict]:
    """Every `next` payload of one graphql-transport-ws subscription until the server completes it."""
    from httpx_ws import aconnect_ws

    async with (
        httpx.AsyncClient(transport=ws_transport(app), base_url="http://keel.test") as http,
        aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}})
        updates = []
        async with asyncio.timeout(timeout):
            while True:
                message = await ws.receive_json()
                if message["type"] == "complete":
                    return updates
                assert message["type"] == "next", message
                updates.append(message["payload"]["data"][field])


async def graphql_upload(client: httpx.AsyncClient, query: str, files: dict[str, tuple[str, bytes, str]], *,
                         token: str, **variables) -> dict:
    """A GraphQL multipart request (the graphql-multipart-request spec): `files` maps variable names to
    (file name, bytes, content type)."""
    names = list(files)
    operations = {"query": query, "variables": {**variables, **{name: None for name in names}}}
    mapping = {str(index): [f"variables.{name}"] for index, name in enumerate(names)}
    parts = {str(index): files[name] for index, name in enumerate(names)}
    response = await client.post("/graphql", data={"operations": json.dumps(operations), "map": json.dumps(mapping)},
                                 files=parts, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


SIGN_UP = """mutation($email: String!, $password: String!) { signUp(email: $email, password: $password) {
  __typename ... on AuthPayload { accessToken refreshToken user { id email workspaces { id name myRole } } }
  ... on Error { code message } } }"""
PASSWORD = "correct horse battery staple"


async def signed_up(client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD) -> dict:
    """A new account through the API: {accessToken, refreshToken, user {id email workspaces}}."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    body = await graphql(client, SIGN_UP, email=email, password=password)
    payload = body["data"]["signUp"]
    assert payload["__typename"] == "AuthPayload", payload
    return payload


async def signed_up_admin(client: httpx.AsyncClient, container: Container) -> dict:
    """An account made admin the way an operator does it (`keel users set-role`)."""
    from src.ports.identity import Role

    payload = await signed_up(client)
    await container.grant_role_from_console().execute(payload["user"]["email"], Role.ADMIN)
    return payload
