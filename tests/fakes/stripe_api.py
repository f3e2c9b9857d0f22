"""A local server speaking Stripe's API for the endpoints Keel uses, so the real `stripe` SDK talks to it:
form-encoded requests with bracketed keys, Stripe's list/pagination and error envelopes, idempotency-key
replay (same key, same params → the first answer, `Idempotent-Replayed: true`; other params → 400
idempotency_error), and 429s with Retry-After on demand. Also signs webhook payloads the way Stripe does."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.oauth_provider import ServedApp
from tests.net import free_port


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload" with the secret>."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(event_id: str, event_type: str, obj: dict, created: int) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "api_version": "2025-03-31.basil", "created": created,
                       "type": event_type, "livemode": False, "pending_webhooks": 1,
                       "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}).encode()


def subscription_object(sub_id: str, customer: str, price: str, status: str, workspace_id: str | None,
                        plan: str | None = None, created: int = 1_700_000_000, period_end: int = 1_900_000_000,
                        cancel_at_period_end: bool = False) -> dict:
    metadata = {key: value for key, value in (("workspace_id", workspace_id), ("plan", plan)) if value}
    return {
        "id": sub_id, "object": "subscription", "customer": customer, "status": status, "created": created,
        "cancel_at_period_end": cancel_at_period_end, "metadata": metadata, "livemode": False,
        "items": {"object": "list", "has_more": False, "url": f"/v1/subscription_items?subscription={sub_id}",
                  "data": [{"id": f"si_{sub_id[4:]}", "object": "subscription_item", "quantity": 1,
                            "current_period_end": period_end,
                            "price": {"id": price, "object": "price", "currency": "usd", "unit_amount": 2000,
                                      "recurring": {"interval": "month"}}}]},
    }


def new_id(prefix: str) -> str:
    """Stripe ids are unique across every run (tests share a database)."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def decode_form(body: str) -> dict:
    """Stripe's bracket encoding (a[b][0][c]=v) back into nested dicts and lists."""
    root: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node: Any = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(key.isdigit() for key in node):
            return [_lists(node[key]) for key in sorted(node, key=int)]
        return {key: _lists(value) for key, value in node.items()}
    return node


def error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
          headers: dict | None = None) -> JSONResponse:
    body = {"error": {"type": kind, "message": message, "code": code,
                      "doc_url": f"https://stripe.com/docs/error-codes/{code}" if code else None}}
    return JSONResponse(body, status_code=status, headers={"request-id": "req_fake", **(headers or {})})


@dataclass
class FakeStripe:
    api_key: str = "sk_test_keel"
    customers: dict[str, dict] = field(default_factory=dict)
    subscriptions: dict[str, dict] = field(default_factory=dict)  # insertion order = creation order
    checkout_sessions: list[dict] = field(default_factory=list)
    portal_sessions: list[dict] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    rate_limited: int = 0
    retry_after: str | None = "1"
    _idempotent: dict[str, tuple[str, dict, dict, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rate_limit_next(self, count: int, retry_after: str | None = "1") -> None:
        with self._lock:
            self.rate_limited, self.retry_after = count, retry_after

    def add_subscription(self, customer: str, price: str, status: str = "active", workspace_id: str | None = None,
                         plan: str | None = None, **extra: Any) -> dict:
        with self._lock:
            sub_id = new_id("sub")
            self.subscriptions[sub_id] = subscription_object(sub_id, customer, price, status, workspace_id, plan,
                                                             created=int(time.time()), **extra)
            return self.subscriptions[sub_id]

    def _gate(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return error(401, "Invalid API Key provided", code="api_key_invalid")
        with self._lock:
            self.requests.append((request.method, request.url.path))
            if self.rate_limited > 0:
                self.rate_limited -= 1
                headers = {"retry-after": self.retry_after} if self.retry_after else {}
                return error(429, "Request rate limit exceeded.", code="rate_limit", headers=headers)
        return None

    async def _write(self, request: Request, create) -> JSONResponse:
        """POST handling shared by every create: gate, decode, idempotency replay."""
        refused = self._gate(request)
        if refused:
            return refused
        params = decode_form((await request.body()).decode())
        key = request.headers.get("idempotency-key")
        with self._lock:
            if key and key in self._idempotent:
                path, first_params, answer, status = self._idempotent[key]
                if (path, first_params) != (request.url.path, params):
                    return error(400, "Keys for idempotent requests can only be used with the same parameters "
                                      "they were first used with.", kind="idempotency_error")
                return JSONResponse(answer, status_code=status, headers={"idempotent-replayed": "true"})
            answer, status = create(params)
            if key:
                self._idempotent[key] = (request.url.path, params, answer, status)
        return JSONResponse(answer, status_code=status)

    async def create_customer(self, request: Request) -> JSONResponse:
        def create(params):
            customer = {"id": new_id("cus"), "object": "customer", "name": params.get("name"),
                        "metadata": params.get("metadata", {}), "created": int(time.time()), "livemode": False}
            self.customers[customer["id"]] = customer
            return customer, 200
        return await self._write(request, create)

    async def create_checkout(self, request: Request) -> JSONResponse:
        def create(params):
            if params.get("customer") not in self.customers:
                return {"error": {"type": "invalid_request_error", "code": "resource_missing", "param": "customer",
                                  "message": f"No such customer: '{params.get('customer')}'"}}, 400
            session_id = new_id("cs_test")
            session = {"id": session_id, "object": "checkout.session", "mode": params.get("mode"),
                       "customer": params["customer"], "client_reference_id": params.get("client_reference_id"),
                       "metadata": params.get("metadata", {}), "status": "open", "line_items": params["line_items"],
                       "subscription_data": params.get("subscription_data", {}),
                       "url": f"https://checkout.stripe.com/c/pay/{session_id}"}
            self.checkout_sessions.append(session)
            return session, 200
        return await self._write(request, create)

    async def create_portal(self, request: Request) -> JSONResponse:
        def create(params):
            session_id = new_id("bps")
            session = {"id": session_id, "object": "billing_portal.session", "customer": params.get("customer"),
                       "return_url": params.get("return_url"), "url": f"https://billing.stripe.com/p/session/{session_id}"}
            self.portal_sessions.append(session)
            return session, 200
        return await self._write(request, create)

    async def list_subscriptions(self, request: Request) -> JSONResponse:
        refused = self._gate(request)
        if refused:
            return refused
        query = request.query_params
        limit = min(int(query.get("limit", 10)), 100)
        with self._lock:
            # Stripe lists newest first; `starting_after` continues after that id.
            items = list(reversed(self.subscriptions.values()))
            if query.get("status", "active") != "all":
                items = [item for item in items if item["status"] == query.get("status", "active")]
            if query.get("starting_after"):
                ids = [item["id"] for item in items]
                if query["starting_after"] not in ids:
                    return error(400, f"No such subscription: '{query['starting_after']}'", code="resource_missing")
                items = items[ids.index(query["starting_after"]) + 1:]
        return JSONResponse({"object": "list", "url": "/v1/subscriptions", "has_more": len(items) > limit,
                             "data": items[:limit]})

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/customers", self.create_customer, methods=["POST"]),
            Route("/v1/checkout/sessions", self.create_checkout, methods=["POST"]),
            Route("/v1/billing_portal/sessions", self.create_portal, methods=["POST"]),
            Route("/v1/subscriptions", self.list_subscriptions, methods=["GET"]),
        ])

    def serve(self) -> ServedApp:
        """`with fake.serve() as served:` KEEL_STRIPE_API_BASE is `served.url`."""
        return ServedApp(self.app(), free_port())
