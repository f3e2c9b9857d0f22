"""The plan catalogue: limits per plan. Configuration may replace it (KEEL_PLANS_FILE) and names each
plan's Stripe price (KEEL_STRIPE_PRICES); the first plan is the one without a subscription."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from src.ports.billing import Plan, PlanLimits
from src.ports.shared import InvalidInput

MB = 1_000_000
DEFAULT_PLANS = (
    Plan("free", PlanLimits(daily_tokens=50_000, soft_cap_tokens=40_000, max_documents=100,
                            max_storage_bytes=50 * MB, seats=1, models=("gpt-4o-mini", "offline"),
                            cheaper_model="offline", requests_per_minute=1_200)),
    Plan("pro", PlanLimits(daily_tokens=2_000_000, soft_cap_tokens=1_500_000, max_documents=10_000,
                           max_storage_bytes=5_000 * MB, seats=5,
                           models=("claude-sonnet-4-6", "gpt-4o", "gpt-4o-mini", "offline"),
                           cheaper_model="gpt-4o-mini", requests_per_minute=6_000)),
    Plan("team", PlanLimits(daily_tokens=10_000_000, soft_cap_tokens=8_000_000, max_documents=100_000,
                            max_storage_bytes=50_000 * MB, seats=50,
                            models=("claude-sonnet-4-6", "gpt-4o", "gpt-4o-mini", "offline"),
                            cheaper_model="gpt-4o-mini", requests_per_minute=20_000)),
)


@dataclass(frozen=True, slots=True)
class Catalogue:
    plans: tuple[Plan, ...]

    @property
    def free(self) -> Plan:
        return self.plans[0]

    def get(self, name: str) -> Plan | None:
        return next((plan for plan in self.plans if plan.name == name), None)

    def by_price(self, price_id: str | None) -> Plan | None:
        return next((plan for plan in self.plans if price_id and plan.price_id == price_id), None)

    def rank(self, name: str) -> int:
        """Later plans rank higher (a workspace with two live subscriptions gets the better one)."""
        return next((index for index, plan in enumerate(self.plans) if plan.name == name), -1)

    def purchasable(self, name: str) -> Plan:
        plan = self.get(name)
        if plan is None:
            raise InvalidInput(f"no plan {name!r}; plans: {', '.join(p.name for p in self.plans)}", field="plan")
        if plan.price_id is None:
            raise InvalidInput(f"the {name} plan has no Stripe price configured", field="plan")
        return plan


def load_catalogue(plans_json: str | None, prices: dict[str, str]) -> Catalogue:
    """`plans_json`: a JSON list of {name, limits: {…}}; None = the defaults. `prices`: plan → price id."""
    plans: tuple[Plan, ...] = DEFAULT_PLANS
    if plans_json:
        try:
            items = json.loads(plans_json)
            plans = tuple(Plan(str(item["name"]), PlanLimits.from_dict(item["limits"])) for item in items)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"the plans file is not a list of {{name, limits}}: {exc}") from None
    if not plans:
        raise ValueError("at least one plan (the free one) is needed")
    unknown = set(prices) - {plan.name for plan in plans}
    if unknown:
        raise ValueError(f"prices for unknown plans: {', '.join(sorted(unknown))}")
    return Catalogue(tuple(replace(plan, price_id=prices.get(plan.name)) for plan in plans))
