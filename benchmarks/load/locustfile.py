"""Mixed traffic for Locust against `keel serve` (+ a worker): each simulated person signs up, gets an API key
and a document, then searches, reads, signs in again, uploads, asks keel-rag for streamed answers; a Stripe
sender posts signed webhooks (a tenth of them re-sent). Refusals by the rate limiter are counted apart
(`rate-limited`), never as failures.

Run through `python -m benchmarks.load` (it starts Keel, the fakes and Locust, and prints the table)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import time
import uuid

from locust import HttpUser, between, task

PASSWORD = "load test pass phrase"
WEBHOOK_SECRET = os.environ.get("LOAD_WEBHOOK_SECRET", "whsec_load")
QUESTIONS = ["How do glaciers carve fjords?", "What makes dunes migrate?", "Why do coral reefs bleach?",
             "What follows the moon?", "How do rivers braid?"]
TOPICS = ["glaciers carve fjords along the coast", "dunes migrate with the wind", "coral reefs bleach when warm",
          "tides follow the moon", "rivers braid across wide plains", "comets grow icy tails near the sun"]


def note(topic: str) -> bytes:
    return (f"# {topic.title()}\n\n" + " ".join([topic] * 20) + f"\n\nWritten {uuid.uuid4()}.").encode()


def rate_limited(response) -> None:
    """A refusal by the rate limiter is what it should be: counted apart, not as a failure."""
    response.success()
    response.request_meta["name"] = "rate-limited"


def graphql_ok(response, field: str) -> None:
    """Marks the request by its GraphQL answer: rate-limited, typed failure, or success."""
    body = response.json() if response.status_code == 200 else {}
    errors = body.get("errors") or []
    if response.status_code == 429 or any((e.get("extensions") or {}).get("code") == "RATE_LIMITED"
                                          for e in errors):
        rate_limited(response)
    elif response.status_code != 200 or errors or body.get("data", {}).get(field) is None:
        response.failure(f"{response.status_code} {json.dumps(errors or body)[:200]}")
    elif isinstance(body["data"][field], dict) and "code" in body["data"][field]:
        response.failure(f"typed {body['data'][field].get('code')}")
    else:
        response.success()


class Person(HttpUser):
    weight = 10
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        self.email = f"load-{uuid.uuid4().hex[:12]}@example.com"
        signed = self.ask("signUp", "mutation($e: String!, $p: String!) { signUp(email: $e, password: $p) { "
                                    "... on AuthPayload { accessToken user { workspaces { id } } } } }",
                          e=self.email, p=PASSWORD)
        self.token = signed["accessToken"]
        self.workspace = signed["user"]["workspaces"][0]["id"]
        created = self.ask("createApiKey", "mutation($w: ID!) { createApiKey(workspaceId: $w, name: \"load\", "
                                           "scopes: [CONTENT_READ, CONTENT_WRITE]) { ... on CreatedApiKey { secret } "
                                           "} }", w=self.workspace)
        self.key = created["secret"]
        self.upload()

    def ask(self, field: str, query: str, **variables) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if getattr(self, "token", None) else {}
        with self.client.post("/graphql", json={"query": query, "variables": variables}, headers=headers,
                              name=field, catch_response=True) as response:
            graphql_ok(response, field)
            return (response.json().get("data") or {}).get(field) or {} if response.status_code == 200 else {}

    @task(6)
    def search(self) -> None:
        self.ask("search", "query($w: ID!, $q: String!) { search(workspaceId: $w, query: $q, k: 5) { "
                           "__typename ... on SearchResults { hits { score } } ... on Error { code } } }",
                 w=self.workspace, q=random.choice(QUESTIONS))

    @task(3)
    def documents(self) -> None:
        self.ask("documents", "query($w: ID!) { documents(workspaceId: $w, first: 20) { __typename "
                              "... on DocumentConnection { items { id status } } ... on Error { code } } }",
                 w=self.workspace)

    @task(1)
    def sign_in(self) -> None:
        self.ask("signIn", "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { __typename "
                           "... on AuthPayload { accessToken } ... on Error { code } } }", e=self.email, p=PASSWORD)

    @task(1)
    def upload(self) -> None:
        query = ("mutation($w: ID!, $file: Upload!) { uploadDocument(workspaceId: $w, file: $file) { __typename "
                 "... on UploadedDocuments { documents { duplicate } } ... on Error { code } } }")
        operations = {"query": query, "variables": {"w": self.workspace, "file": None}}
        with self.client.post("/graphql", name="uploadDocument", catch_response=True,
                              headers={"Authorization": f"Bearer {self.token}"},
                              data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
                              files={"0": ("note.md", note(random.choice(TOPICS)), "text/markdown")}) as response:
            graphql_ok(response, "uploadDocument")

    @task(2)
    def answer(self) -> None:
        """keel-rag streamed as OpenAI streams it; the request's time is the whole answer's."""
        with self.client.post("/v1/chat/completions", name="answer (stream)", stream=True, catch_response=True,
                              headers={"Authorization": f"Bearer {self.key}"},
                              json={"model": "keel-rag", "stream": True,
                                    "messages": [{"role": "user", "content": random.choice(QUESTIONS)}]}) as response:
            if response.status_code == 429:
                rate_limited(response)
                return
            text = "".join(line.decode() for line in response.iter_lines() if line)
            if response.status_code != 200 or "[DONE]" not in text or '"error"' in text:
                response.failure(f"{response.status_code} {text[:200]}")
            else:
                response.success()


class Stripe(HttpUser):
    """Stripe delivering events: signed as Stripe signs them; one in ten is a re-delivery."""

    weight = 1
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.sent: list[bytes] = []

    @task
    def deliver(self) -> None:
        if self.sent and random.random() < 0.1:
            payload = random.choice(self.sent)
        else:
            payload = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "charge.succeeded",
                                  "created": int(time.time()), "api_version": "2024-06-20",
                                  "data": {"object": {"id": f"ch_{uuid.uuid4().hex[:14]}", "object": "charge"}}
                                  }).encode()
            self.sent.append(payload)
        stamp = int(time.time())
        signature = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
        with self.client.post("/webhooks/stripe", data=payload, name="stripe webhook", catch_response=True,
                              headers={"Stripe-Signature": f"t={stamp},v1={signature}",
                                       "Content-Type": "application/json"}) as response:
            if response.status_code == 200:
                response.success()
            else:
                response.failure(f"{response.status_code} {response.text[:200]}")
