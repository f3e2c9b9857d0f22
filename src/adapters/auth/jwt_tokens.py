"""Access tokens as JWTs signed with Ed25519 (EdDSA). The algorithm is pinned, so `alg=none`, HMAC
tokens forged with the public key (key confusion) and every other algorithm are refused; exp, iat,
aud and iss are required and checked. A token's signature is checked once per process (its claims kept by
the exact token string, a few thousand at most); its expiry on every use."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from src.ports.identity import AccessClaims, InvalidToken, Role

ALGORITHM = "EdDSA"
LEEWAY_SECONDS = 5
VERIFIED_TOKENS = 10_000  # a bound, not an LRU: the access tokens of the last minutes


def generate_private_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class JwtAccessTokenCodec:
    def __init__(self, private_pem: Callable[[], Awaitable[str]], issuer: str, audience: str = "keel") -> None:
        self._load_pem = private_pem
        self._issuer = issuer
        self._audience = audience
        self._private: Ed25519PrivateKey | None = None
        self._public: Ed25519PublicKey | None = None
        self._lock = asyncio.Lock()
        self._verified: dict[str, AccessClaims] = {}

    async def _key(self) -> Ed25519PrivateKey:
        if self._private is None:
            async with self._lock:
                if self._private is None:
                    pem = await self._load_pem()
                    self._private = serialization.load_pem_private_key(pem.encode(), password=None)
        return self._private

    async def public_pem(self) -> str:
        key = (await self._key()).public_key()
        return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    async def encode(self, claims: AccessClaims) -> str:
        payload = {
            "sub": str(claims.user_id),
            "sid": str(claims.session_id),
            "role": str(claims.role),
            "iat": int(claims.issued_at.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "iss": self._issuer,
            "aud": self._audience,
        }
        return jwt.encode(payload, await self._key(), algorithm=ALGORITHM)

    async def decode(self, token: str) -> AccessClaims:
        claims = self._verified.get(token)
        if claims is None:
            if self._public is None:
                self._public = (await self._key()).public_key()
            claims = self._verify(token, self._public)
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = claims
        elif claims.expires_at.timestamp() + LEEWAY_SECONDS < time.time():
            raise InvalidToken("the access token has expired; refresh the session")
        return claims

    def _verify(self, token: str, public: Ed25519PublicKey) -> AccessClaims:
        try:
            payload = jwt.decode(
                token, public, algorithms=[ALGORITHM], audience=self._audience, issuer=self._issuer,
                leeway=LEEWAY_SECONDS, options={"require": ["exp", "iat", "iss", "aud", "sub", "sid"]},
            )
            return AccessClaims(
                user_id=UUID(payload["sub"]),
                session_id=UUID(payload["sid"]),
                role=Role(payload.get("role", "user")),
                issued_at=datetime.fromtimestamp(payload["iat"], UTC),
                expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the access token has expired; refresh the session") from None
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise InvalidToken("the access token is not valid") from None
