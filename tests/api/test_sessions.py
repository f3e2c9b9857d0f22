"""Sessions: access tokens (tampered, expired, alg=none, key confusion, wrong aud/iss refused), refresh
rotation with reuse detection, sign-out (one and everywhere) taking effect on the next request."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest

from src.ports.identity import AccessClaims, Role
from tests.conftest import PASSWORD, graphql, signed_up

ME = "{ me { id email } }"
REFRESH = """mutation($t: String!) { refreshSession(refreshToken: $t) { __typename
  ... on AuthPayload { accessToken refreshToken } ... on Error { code message } } }"""
SIGN_IN = """mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { __typename
  ... on AuthPayload { accessToken refreshToken } ... on Error { code message } } }"""
SIGN_OUT = "mutation($all: Boolean!) { signOut(everywhere: $all) { __typename ... on Error { code } } }"


def _code(body: dict) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors and errors[0].get("extensions") else None


async def _me_code(client, token: str) -> str | None:
    body = await graphql(client, ME, token=token)
    return None if body.get("data") and body["data"]["me"] else _code(body)


async def test_the_access_token_opens_me(client):
    account = await signed_up(client)
    body = await graphql(client, ME, token=account["accessToken"])
    assert body["data"]["me"] == {"id": account["user"]["id"], "email": account["user"]["email"]}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_forged_and_broken_tokens_are_refused(client, container):
    account = await signed_up(client)
    good = account["accessToken"]
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    public_pem = await container.token_codec().public_pem()
    promoted = {**claims, "role": "admin", "sub": str(uuid.uuid4())}
    forged = [
        f"{header}.{payload}.{signature[:-4]}AAAA",  # tampered signature
        f"{header}.{_b64(promoted)}.{signature}",  # tampered claims
        f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",  # alg=none
        _hmac_signed(claims, public_pem.encode()),  # key confusion: HMAC with our public key as the secret
        pyjwt.encode({**claims, "aud": "another-service"}, _private_key(), algorithm="EdDSA"),
        "not-a-jwt",
    ]
    for token in forged:
        assert await _me_code(client, token) == "UNAUTHENTICATED", token
    assert await _me_code(client, good) is None


def _hmac_signed(claims: dict, secret: bytes) -> str:
    """Built by hand: PyJWT itself refuses to use a PEM key as an HMAC secret."""
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}"
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def _private_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()  # a key that is not Keel's


async def test_an_expired_token_is_refused(client, container):
    account = await signed_up(client)
    issued = datetime.now(UTC) - timedelta(hours=2)
    principal = await container.authenticate().execute(account["accessToken"])
    expired = await container.token_codec().encode(
        AccessClaims(principal.user_id, principal.session_id, Role.USER, issued, issued + timedelta(minutes=15))
    )
    body = await graphql(client, ME, token=expired)
    assert _code(body) == "UNAUTHENTICATED" and "expired" in body["errors"][0]["message"]


async def test_a_token_accepted_once_is_refused_once_it_expires(client, container):
    """Its signature is checked once per process; its expiry on every use."""
    account = await signed_up(client)
    principal = await container.authenticate().execute(account["accessToken"])
    now = datetime.now(UTC)
    token = await container.token_codec().encode(AccessClaims(  # expired 3.5 s ago: within the 5 s leeway
        principal.user_id, principal.session_id, Role.USER, now - timedelta(minutes=15), now - timedelta(seconds=3.5)))
    assert "errors" not in await graphql(client, ME, token=token)
    await asyncio.sleep(2)  # now past the leeway
    body = await graphql(client, ME, token=token)
    assert _code(body) == "UNAUTHENTICATED" and "expired" in body["errors"][0]["message"]


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(client):
    account = await signed_up(client)
    first = (await graphql(client, REFRESH, t=account["refreshToken"]))["data"]["refreshSession"]
    assert first["__typename"] == "AuthPayload" and first["refreshToken"] != account["refreshToken"]
    assert await _me_code(client, first["accessToken"]) is None

    # The old refresh token again: someone copied it. The family dies, the thief's and the owner's tokens too.
    reuse = (await graphql(client, REFRESH, t=account["refreshToken"]))["data"]["refreshSession"]
    assert reuse["code"] == "invalid_token" and "already used" in reuse["message"]
    after = (await graphql(client, REFRESH, t=first["refreshToken"]))["data"]["refreshSession"]
    assert after["code"] == "invalid_token"
    assert await _me_code(client, first["accessToken"]) == "UNAUTHENTICATED"


async def test_a_garbage_refresh_token_is_a_typed_error(client):
    answer = (await graphql(client, REFRESH, t="nope"))["data"]["refreshSession"]
    assert answer == {"__typename": "AuthError", "code": "invalid_token",
                      "message": "this refresh token is not valid; sign in again"}


async def test_sign_out_ends_this_session_at_once(client):
    account = await signed_up(client)
    other = (await graphql(client, SIGN_IN, e=account["user"]["email"], p=PASSWORD))["data"]["signIn"]
    assert (await graphql(client, SIGN_OUT, all=False, token=account["accessToken"]))["data"]["signOut"] == {
        "__typename": "Ok"}
    assert await _me_code(client, account["accessToken"]) == "UNAUTHENTICATED"
    refreshed = (await graphql(client, REFRESH, t=account["refreshToken"]))["data"]["refreshSession"]
    assert refreshed["code"] == "invalid_token"
    assert await _me_code(client, other["accessToken"]) is None  # the other device stays signed in


async def test_sign_out_everywhere_ends_every_session(client):
    account = await signed_up(client)
    other = (await graphql(client, SIGN_IN, e=account["user"]["email"], p=PASSWORD))["data"]["signIn"]
    await graphql(client, SIGN_OUT, all=True, token=other["accessToken"])
    assert await _me_code(client, account["accessToken"]) == "UNAUTHENTICATED"
    assert await _me_code(client, other["accessToken"]) == "UNAUTHENTICATED"


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic abc", "Token x"])
async def test_a_malformed_authorization_header_is_anonymous_not_a_crash(client, header):
    response = await client.post("/graphql", json={"query": ME}, headers={"Authorization": header})
    assert response.status_code == 200 and _code(response.json()) == "UNAUTHENTICATED"
