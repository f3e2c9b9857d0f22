"""Logs as an operator reads them from `keel serve`: JSON lines, with the request id carried into the worker
that ran the request's job, and no personal data."""

from __future__ import annotations

import json
import uuid

import httpx

from src.core.knowledge.documents import INGEST_JOB
from tests.conftest import keel_serve, start_worker, stop_worker, wait_for

SIGN_UP = """mutation($e: String!, $p: String!) { signUp(email: $e, password: $p) { __typename
  ... on AuthPayload { accessToken user { workspaces { id } } } } }"""
UPLOAD = """mutation($w: ID!, $d: [DocumentInput!]) { uploadDocuments(workspaceId: $w, documents: $d) {
  __typename ... on UploadedDocuments { documents { document { id } } } } }"""
STATUS = """query($w: ID!, $id: ID!) { document(workspaceId: $w, id: $id) { ... on Document { status } } }"""


def test_logs_are_json_lines_and_a_request_id_reaches_the_worker_that_runs_its_job(test_env, tmp_path):
    log_file, request_id = tmp_path / "keel.log", f"upload-{uuid.uuid4().hex}"
    email = f"logs-{uuid.uuid4().hex[:8]}@example.com"
    env = {**test_env, "KEEL_LOG_FORMAT": "json"}
    with open(log_file, "w") as output, keel_serve(env, output) as (base, _):
        worker = start_worker(env, output=output)
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                def call(query: str, token: str | None = None, **variables) -> dict:
                    sent = {"authorization": f"Bearer {token}"} if token else {}
                    response = http.post("/graphql", json={"query": query, "variables": variables}, headers=sent)
                    return response.json()["data"]

                account = call(SIGN_UP, e=email, p="a long passphrase 42")["signUp"]
                token, workspace = account["accessToken"], account["user"]["workspaces"][0]["id"]
                response = http.post("/graphql", json={"query": UPLOAD, "variables": {"w": workspace, "d": [
                                         {"title": "Fjords", "text": "Glaciers carve fjords."}]}},
                                     headers={"authorization": f"Bearer {token}", "x-request-id": request_id})
                assert response.headers["x-request-id"] == request_id
                document = response.json()["data"]["uploadDocuments"]["documents"][0]["document"]["id"]
                wait_for(lambda: call(STATUS, token, w=workspace, id=document)["document"]["status"] == "READY",
                         timeout=120, interval=0.3)
                assert len(http.get("/healthz").headers["x-request-id"]) == 32  # a new one when none is sent
        finally:
            stop_worker(worker)
    text = log_file.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    others = [line for line in text.splitlines() if line.strip() and not line.startswith("{")]
    assert all(line.startswith("keel: ") for line in others), others  # the CLI's own announcements
    ours = [line for line in lines if line.get("request_id") == request_id]
    worker = [line for line in ours if line.get("job") == INGEST_JOB]
    assert worker and "ingested 1 document" in worker[0]["message"], ours
    assert worker[0]["workspace_id"] == workspace and worker[0]["operation"] == "uploadDocuments"
    assert email not in text
