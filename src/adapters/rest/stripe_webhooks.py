"""POST /webhooks/stripe: the raw body is verified with Stripe's SDK (HMAC-SHA256 over `t.payload`, within
the tolerance window) before anything is parsed or stored; the event then goes to the billing core.

Answers: 200 processed / ignored / duplicate (KEEL_STRIPE_WEBHOOKS_APPLY=worker: accepted / duplicate);
400 bad signature or body (Stripe shows it, nothing stored); 500 when applying failed (Stripe retries;
nothing was half-applied); 503 when no signing secret is set."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import stripe
from starlette.requests import Request
from starlette.responses import JSONResponse

from src.core.billing.webhooks import AcceptStripeEvent, HandleStripeEvent
from src.ports.billing import StripeEvent

log = logging.getLogger(__name__)


def _event_from(body: bytes) -> StripeEvent | None:
    try:
        raw = json.loads(body)
        obj = raw["data"]["object"]
        if not isinstance(obj, dict) or not isinstance(raw["id"], str) or not isinstance(raw["type"], str):
            return None
        return StripeEvent(raw["id"], raw["type"], int(raw["created"]), obj)
    except (ValueError, KeyError, TypeError):
        return None


def stripe_webhook_endpoint(secret: str | None, tolerance: int,
                            handle_event: Callable[[], HandleStripeEvent | AcceptStripeEvent]):
    async def webhook(request: Request) -> JSONResponse:
        if not secret:
            return JSONResponse({"error": "Stripe webhooks are not configured (KEEL_STRIPE_WEBHOOK_SECRET)"}, 503)
        body = await request.body()
        try:
            stripe.WebhookSignature.verify_header(body, request.headers.get("stripe-signature"), secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            return JSONResponse({"error": f"signature verification failed: {exc.user_message or exc}"}, 400)
        event = _event_from(body)
        if event is None:
            return JSONResponse({"error": "the body is not a Stripe event (id, type, created, data.object)"}, 400)
        try:
            outcome = await handle_event().execute(event)
        except Exception:
            log.exception("Stripe event %s (%s) failed; Stripe will retry", event.id, event.type)
            return JSONResponse({"error": "the event could not be applied; retry later", "id": event.id}, 500)
        return JSONResponse({"id": event.id, "outcome": outcome})

    return webhook
