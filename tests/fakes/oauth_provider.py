"""A local OAuth provider that speaks the real wire protocol: an OpenID Connect provider shaped like
Google (discovery, authorize, token, userinfo, JWKS; RS256 id_tokens) and GitHub's OAuth2 endpoints
(authorize, access_token, /user, /user/emails). It checks what a real provider checks: client
credentials, redirect_uri, PKCE (S256), single-use codes. Keel's real authlib client talks to it over HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

CLIENT_ID = "keel-test-client"
CLIENT_SECRET = "keel-test-secret"


@dataclass
class FakeAccount:
    subject: str
    email: str | None
    email_verified: bool = True
    name: str = "Fake Person"


@dataclass
class _Grant:
    account: FakeAccount
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None


@dataclass
class FakeOAuthProvider:
    base_url: str = ""
    account: FakeAccount = field(default_factory=lambda: FakeAccount("sub-1", "person@example.com"))
    tamper: str | None = None  # "aud" | "nonce" | "signature": make the next id_tokens wrong that way
    codes: dict[str, _Grant] = field(default_factory=dict)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "fake-1"}, private=True))

    # -- OIDC (Google-shaped) --------------------------------------------------------------------------
    async def discovery(self, request: Request) -> JSONResponse:
        return JSONResponse({
            "issuer": self.base_url,
            "authorization_endpoint": f"{self.base_url}/o/oauth2/v2/auth",
            "token_endpoint": f"{self.base_url}/token",
            "userinfo_endpoint": f"{self.base_url}/v1/userinfo",
            "jwks_uri": f"{self.base_url}/oauth2/v3/certs",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })

    async def jwks(self, request: Request) -> JSONResponse:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request):
        """Consent is automatic: answer with the redirect a browser would follow."""
        query = request.query_params
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE required"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = _Grant(self.account, CLIENT_ID, query["redirect_uri"], query["code_challenge"],
                                  query.get("nonce"))
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}")

    async def token(self, request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode()))
        client_id, client_secret = _client_credentials(request, form)
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(form.get("code", ""), None)  # codes are single use
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri"}, status_code=400)
        if _s256(form.get("code_verifier", "")) != grant.challenge:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE verifier"}, status_code=400)
        access = secrets.token_urlsafe(16)
        self.codes[f"access:{access}"] = grant
        body = {"access_token": access, "token_type": "Bearer", "expires_in": 3600, "scope": form.get("scope", "")}
        if grant.nonce is not None:
            body["id_token"] = self._id_token(grant)
        return JSONResponse(body)

    def _id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        claims = {"iss": self.base_url, "aud": CLIENT_ID, "sub": grant.account.subject, "iat": now, "exp": now + 3600,
                  "nonce": grant.nonce, "email": grant.account.email, "email_verified": grant.account.email_verified,
                  "name": grant.account.name}
        if self.tamper == "aud":
            claims["aud"] = "someone-else"
        if self.tamper == "nonce":
            claims["nonce"] = "replayed"
        signing_key = RSAKey.generate_key(2048, parameters={"kid": "fake-1"}) if self.tamper == "signature" \
            else self.key
        return jwt.encode({"alg": "RS256", "kid": "fake-1"}, claims, signing_key)

    # -- GitHub-shaped -------------------------------------------------------------------------------
    async def github_token(self, request: Request) -> JSONResponse:
        return await self.token(request)

    def _bearer_grant(self, request: Request) -> _Grant | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return self.codes.get(f"access:{token}")

    async def github_user(self, request: Request) -> JSONResponse:
        grant = self._bearer_grant(request)
        if grant is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse({"id": int(grant.account.subject.split("-")[-1]), "login": "fake-login",
                             "name": grant.account.name})

    async def github_emails(self, request: Request) -> JSONResponse:
        grant = self._bearer_grant(request)
        if grant is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        emails = [{"email": "noreply@users.example.com", "primary": False, "verified": True, "visibility": None}]
        if grant.account.email:
            emails.append({"email": grant.account.email, "primary": True,
                           "verified": grant.account.email_verified, "visibility": "private"})
        return JSONResponse(emails)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/o/oauth2/v2/auth", self.authorize),
            Route("/token", self.token, methods=["POST"]),
            Route("/oauth2/v3/certs", self.jwks),
            Route("/login/oauth/authorize", self.authorize),
            Route("/login/oauth/access_token", self.github_token, methods=["POST"]),
            Route("/user", self.github_user),
            Route("/user/emails", self.github_emails),
        ])


def _client_credentials(request: Request, form: dict) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user, password
    return form.get("client_id"), form.get("client_secret")


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class ServedApp:
    """Runs an ASGI app with uvicorn on a free loopback port in a background thread."""

    def __init__(self, app, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
