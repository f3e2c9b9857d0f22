"""OAuth sign-in providers on authlib's httpx client: an OpenID Connect provider (Google, found by
discovery, id_token checked against its JWKS with joserfc) and GitHub (OAuth2, verified email from
/user/emails). Only the provider's endpoints are configured; the flow is the same code for real and fake."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from src.ports.identity import InvalidCredentials, OAuthProfile

TIMEOUT = 10.0  # seconds; a plain number, since authlib may run on httpx or httpx2 depending on what is installed
ID_TOKEN_ALGORITHMS = ["RS256", "ES256", "EdDSA"]


@dataclass(frozen=True, slots=True)
class OAuthClientConfig:
    client_id: str
    client_secret: str


class _AuthlibProvider:
    scope = ""

    def __init__(self, name: str, client: OAuthClientConfig) -> None:
        self.name = name
        self._client = client

    def _session(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(self._client.client_id, self._client.client_secret, scope=self.scope,
                                 redirect_uri=redirect_uri, code_challenge_method="S256", timeout=TIMEOUT)

    async def _exchange(self, token_url: str, code: str, code_verifier: str, redirect_uri: str) -> dict:
        async with self._session(redirect_uri) as session:
            try:
                return dict(await session.fetch_token(token_url, code=code, code_verifier=code_verifier))
            except (OAuthError, httpx.HTTPError, ValueError) as exc:
                raise InvalidCredentials(f"{self.name} refused the sign-in ({_reason(exc)})") from None


class OidcProvider(_AuthlibProvider):
    """Any OpenID Connect provider (Google by default), configured by its discovery URL."""

    scope = "openid email profile"

    def __init__(self, name: str, client: OAuthClientConfig, discovery_url: str) -> None:
        super().__init__(name, client)
        self._discovery_url = discovery_url
        self._metadata: dict | None = None

    async def _meta(self) -> dict:
        if self._metadata is None:
            self._metadata = await _get_json(self._discovery_url, self.name)
        return self._metadata

    async def authorization_url(self, *, state: str, code_verifier: str, nonce: str, redirect_uri: str) -> str:
        meta = await self._meta()
        async with self._session(redirect_uri) as session:
            url, _ = session.create_authorization_url(meta["authorization_endpoint"], state=state,
                                                      code_verifier=code_verifier, nonce=nonce)
        return url

    async def fetch_profile(self, *, code: str, code_verifier: str, nonce: str, redirect_uri: str) -> OAuthProfile:
        meta = await self._meta()
        token = await self._exchange(meta["token_endpoint"], code, code_verifier, redirect_uri)
        if "id_token" not in token:
            raise InvalidCredentials(f"{self.name} sent no id_token")
        keys = KeySet.import_key_set(await _get_json(meta["jwks_uri"], self.name))
        try:
            decoded = jwt.decode(token["id_token"], keys, algorithms=ID_TOKEN_ALGORITHMS)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": meta["issuer"]},
                aud={"essential": True, "value": self._client.client_id},
                nonce={"essential": True, "value": nonce},
                sub={"essential": True},
                exp={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise InvalidCredentials(f"{self.name} sent an id_token that does not verify ({_reason(exc)})") from None
        claims = decoded.claims
        return OAuthProfile(self.name, str(claims["sub"]), claims.get("email"),
                            claims.get("email_verified") is True, claims.get("name", ""))


class GitHubProvider(_AuthlibProvider):
    scope = "read:user user:email"

    def __init__(self, client: OAuthClientConfig, web_url: str = "https://github.com",
                 api_url: str = "https://api.github.com") -> None:
        super().__init__("github", client)
        self._web = web_url.rstrip("/")
        self._api = api_url.rstrip("/")

    async def authorization_url(self, *, state: str, code_verifier: str, nonce: str, redirect_uri: str) -> str:
        async with self._session(redirect_uri) as session:
            url, _ = session.create_authorization_url(f"{self._web}/login/oauth/authorize", state=state,
                                                      code_verifier=code_verifier)
        return url

    async def fetch_profile(self, *, code: str, code_verifier: str, nonce: str, redirect_uri: str) -> OAuthProfile:
        token = await self._exchange(f"{self._web}/login/oauth/access_token", code, code_verifier, redirect_uri)
        headers = {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/vnd.github+json"}
        user = await _get_json(f"{self._api}/user", self.name, headers)
        emails = await _get_json(f"{self._api}/user/emails", self.name, headers)
        primary = next((e for e in emails if e.get("primary") and e.get("verified")), None)
        verified = primary or next((e for e in emails if e.get("verified")), None)
        return OAuthProfile("github", str(user["id"]), verified["email"] if verified else None, verified is not None,
                            user.get("name") or user.get("login") or "")


async def _get_json(url: str, provider: str, headers: dict | None = None):
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            response = await http.get(url, headers=headers)
            response.raise_for_status()
            return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise InvalidCredentials(f"{provider} could not be reached ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
