"""The typed context every resolver receives: services, the caller (resolved once per request), client info."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.types import Info as StrawberryInfo

from src.core.services import Services
from src.ports.context import bind_context
from src.ports.edge import RateDecision
from src.ports.identity import ClientInfo, Principal, Unauthenticated

_UNRESOLVED = object()


@dataclass
class Context:
    services: Services  # every domain's use cases (src/core/services.py), provided by src/wiring
    request: Any = None
    response: Any = None
    connection_params: dict | None = None  # graphql-transport-ws connection_init payload
    _principal: Any = field(default=_UNRESOLVED, repr=False)
    rate: RateDecision | None = None  # the rate-limit decision nearest its limit, for the response's headers

    def note_rate(self, decision: RateDecision) -> None:
        if not decision.policy:
            return
        if self.rate is None or (self.rate.allowed and (not decision.allowed or
                                                        decision.remaining < self.rate.remaining)):
            self.rate = decision

    def set_status(self, status: int) -> None:
        if self.request is not None and self.request.scope["type"] == "http" and self.response is not None:
            self.response.status_code = status

    def write_rate_headers(self) -> None:
        if self.rate is None or self.response is None or self.request.scope["type"] != "http":
            return
        for name, value in self.rate.header_fields().items():
            self.response.headers[name] = value

    @property
    def client(self) -> ClientInfo:
        if self.request is None:
            return ClientInfo()
        host = self.request.client.host if self.request.client else ""
        return ClientInfo(ip=host, user_agent=self.request.headers.get("user-agent", "")[:300])

    def _credentials(self) -> tuple[str, str] | None:
        """("bearer", token) or ("api_key", key) from headers, or from the websocket's connection_init."""
        headers = {k.lower(): v for k, v in (self.connection_params or {}).items() if isinstance(v, str)}
        if self.request is not None:
            headers.update({k.lower(): v for k, v in self.request.headers.items()})
        if headers.get("x-api-key"):
            return "api_key", headers["x-api-key"].strip()
        scheme, _, value = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return "bearer", value.strip()
        if scheme.lower() in ("apikey", "api-key") and value.strip():
            return "api_key", value.strip()
        return None

    def forget_caller(self) -> None:
        """The next `principal()` authenticates again (a websocket does so on every `subscribe`)."""
        self._principal = _UNRESOLVED

    @property
    def known_principal(self) -> Principal | None:
        """The caller as last authenticated, without asking again."""
        return self._principal if isinstance(self._principal, Principal) else None

    async def principal(self) -> Principal | None:
        """The caller, or None when anonymous. A bad credential is an error, never silently anonymous."""
        if self._principal is _UNRESOLVED:
            credentials = self._credentials()
            if credentials is None:
                self._principal = None
            else:
                kind, secret = credentials
                try:
                    if kind == "bearer":
                        self._principal = await self.services.authenticate().execute(secret)
                    else:
                        self._principal = await self.services.authenticate_api_key().execute(secret)
                except Unauthenticated as exc:
                    self._principal = exc
        if isinstance(self._principal, Unauthenticated):
            raise self._principal
        if self._principal is not None:  # this resolver's log lines and jobs carry who asked
            bind_context(user_id=self._principal.user_id, api_key_id=self._principal.api_key_id)
        return self._principal


Info = StrawberryInfo[Context, None]
