"""The ASGI app end to end: GraphiQL, typed errors, /healthz, /metrics."""

from __future__ import annotations

import uuid

from src.config import Settings
from src.container import build_container, shutdown
from src.main import create_app
from tests.conftest import asgi_client, graphql, signed_up, signed_up_admin

PROBE = "query($id: ID!) { workerProbe(id: $id) { __typename ... on Error { code message } " \
        "... on InvalidInputError { field } ... on WorkerProbe { id done } } }"


async def test_graphiql_page_loads_in_a_browser(client):
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_root_serves_the_console_and_only_its_own_files(client):
    page = await client.get("/")
    assert page.status_code == 200 and "<title>Keel console</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = await client.get("/console/console.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for outside in ("/console/../console.py", "/console/%2e%2e/console.py", "/console/nothing.js", "/console/"):
        assert (await client.get(outside)).status_code == 404, outside


async def test_a_malformed_id_is_a_typed_error(client, container):
    token = (await signed_up_admin(client, container))["accessToken"]
    body = await graphql(client, PROBE, id="not-a-uuid", token=token)
    assert body["data"]["workerProbe"] == {
        "__typename": "InvalidInputError", "code": "invalid_input", "message": "probe id must be a UUID", "field": "id",
    }


async def test_an_unknown_id_is_not_found(client, container):
    token = (await signed_up_admin(client, container))["accessToken"]
    body = await graphql(client, PROBE, id=str(uuid.uuid4()), token=token)
    assert body["data"]["workerProbe"]["__typename"] == "NotFoundError"


async def test_a_broken_query_says_why_without_a_stack_trace(client):
    response = await client.post("/graphql", json={"query": "{ workerProbe(id: 1) { nope } }"})
    errors = response.json()["errors"]
    assert errors and all("Traceback" not in error["message"] for error in errors)
    assert any("nope" in error["message"] for error in errors)


async def test_healthz_checks_the_database_and_both_extensions(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    healthy = {check["name"] for check in body["checks"] if check["ok"]}
    assert healthy == {"database", "extension:vector", "extension:age"}


async def test_healthz_is_503_when_the_database_is_down(settings: Settings):
    unreachable = settings.model_copy(update={"database_url": "postgresql://keel@127.0.0.1:1/keel"})
    services = build_container(unreachable)
    app = create_app(unreachable, services)
    async with asgi_client(app) as http:
        response = await http.get("/healthz")
    await shutdown(services)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    database = body["checks"][0]
    assert (database["name"], database["ok"]) == ("database", False) and database["detail"]


async def test_metrics_count_requests_by_route_in_prometheus_format(client):
    await client.get("/healthz")
    await client.get(f"/no-such-page-{uuid.uuid4()}")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'keel_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="other",status="404"' in text and "no-such-page" not in text
    assert "keel_http_request_seconds_bucket" in text


async def test_a_busy_pool_answers_unavailable_after_the_pool_timeout_instead_of_hanging(settings: Settings):
    busy = settings.model_copy(update={"db_pool_size": 1, "db_pool_timeout_seconds": 0.5})
    services = build_container(busy)
    app = create_app(busy, services)
    async with asgi_client(app) as http:
        account = await signed_up(http)
        held = [await services.engine().connect() for _ in range(2)]  # the pool (1 + 1 overflow) is taken
        try:
            answer = await graphql(http, "{ me { id } }", token=account["accessToken"])
        finally:
            for connection in held:
                await connection.close()
        after = await graphql(http, "{ me { id } }", token=account["accessToken"])
    await shutdown(services)
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "UNAVAILABLE" and "busy" in error["message"]
    assert after["data"]["me"]["id"] == account["user"]["id"]
