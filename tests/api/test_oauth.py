"""OAuth sign-in end to end: Keel's real authlib client against a local provider speaking the real
protocol (OIDC discovery + JWKS for Google, OAuth2 + /user/emails for GitHub), PKCE and state checked."""

from __future__ import annotations

import socket
import uuid
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from src.container import build_container, shutdown
from src.main import create_app
from tests.conftest import asgi_client, graphql, signed_up
from tests.fakes.oauth_provider import CLIENT_ID, CLIENT_SECRET, FakeAccount, FakeOAuthProvider, ServedApp

START = "mutation($p: String!) { startOAuth(provider: $p) { __typename ... on OAuthStartPayload { authorizationUrl state } ... on Error { code message } } }"  # noqa: E501
COMPLETE = """mutation($p: String!, $code: String!, $state: String!) {
  completeOAuth(provider: $p, code: $code, state: $state) {
  __typename ... on AuthPayload { accessToken user { id email emailVerified workspaces { name myRole } } }
  ... on Error { code message } } }"""


@pytest.fixture(scope="module")
def provider():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = FakeOAuthProvider(base_url=f"http://127.0.0.1:{port}")
    with ServedApp(fake.app(), port):
        yield fake


@pytest.fixture
async def oauth_client(settings, provider):
    configured = settings.model_copy(update={
        "oauth_google_client_id": CLIENT_ID, "oauth_google_client_secret": CLIENT_SECRET,
        "oauth_google_discovery_url": f"{provider.base_url}/.well-known/openid-configuration",
        "oauth_github_client_id": CLIENT_ID, "oauth_github_client_secret": CLIENT_SECRET,
        "oauth_github_web_url": provider.base_url, "oauth_github_api_url": provider.base_url,
        "oauth_redirect_url": "http://app.example/oauth/{provider}/callback",
    })
    services = build_container(configured)
    async with asgi_client(create_app(configured, services)) as http:
        yield http
    await shutdown(services)
    provider.tamper = None


def _person(email: str, email_verified: bool = True) -> FakeAccount:
    """Someone at the provider; subjects are unique per run since the test database outlives runs."""
    return FakeAccount(f"sub-{uuid.uuid4().int % 10**9}", email, email_verified=email_verified)


async def _browser_consents(authorization_url: str) -> dict[str, str]:
    """What the browser does: open the provider's page, get redirected back with code and state."""
    async with httpx.AsyncClient() as browser:
        response = await browser.get(authorization_url)
    assert response.status_code in (302, 307), response.text
    location = urlparse(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}".endswith("/oauth/google/callback") or \
        location.path.endswith("/callback")
    return {key: values[0] for key, values in parse_qs(location.query).items()}


async def _start(client, name: str) -> dict:
    started = (await graphql(client, START, p=name))["data"]["startOAuth"]
    assert started["__typename"] == "OAuthStartPayload", started
    return started


async def _sign_in_with(client, name: str) -> dict:
    started = await _start(client, name)
    query = parse_qs(urlparse(started["authorizationUrl"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"] == [started["state"]]
    returned = await _browser_consents(started["authorizationUrl"])
    body = await graphql(client, COMPLETE, p=name, code=returned["code"], state=returned["state"])
    return body["data"]["completeOAuth"]


@pytest.mark.parametrize("name", ["google", "github"])
async def test_a_new_person_gets_an_account_and_a_workspace(oauth_client, provider, name):
    provider.account = _person(f"new-{name}-{uuid.uuid4().hex[:6]}@example.com")
    done = await _sign_in_with(oauth_client, name)
    assert done["__typename"] == "AuthPayload", done
    assert done["user"]["email"] == provider.account.email and done["user"]["emailVerified"] is True
    assert [w["myRole"] for w in done["user"]["workspaces"]] == ["OWNER"]
    again = await _sign_in_with(oauth_client, name)  # the same provider identity signs in to the same account
    assert again["user"]["id"] == done["user"]["id"]


@pytest.mark.parametrize("name", ["google", "github"])
async def test_a_verified_email_links_to_the_existing_account(oauth_client, provider, name):
    existing = await signed_up(oauth_client)
    provider.account = _person(existing["user"]["email"].upper())
    done = await _sign_in_with(oauth_client, name)
    assert done["user"]["id"] == existing["user"]["id"]


async def test_the_verified_owner_takes_over_an_account_an_impostor_registered(oauth_client, provider):
    impostor = await signed_up(oauth_client)  # registered someone else's email, never verified it
    provider.account = _person(impostor["user"]["email"])
    owner = await _sign_in_with(oauth_client, "google")
    assert owner["user"]["id"] == impostor["user"]["id"] and owner["user"]["emailVerified"] is True
    assert (await graphql(oauth_client, "{ me { id } }", token=impostor["accessToken"]))["errors"]
    password_sign_in = await graphql(
        oauth_client, 'mutation($e: String!) { signIn(email: $e, password: "correct horse battery staple") '
                      '{ __typename } }', e=impostor["user"]["email"])
    assert password_sign_in["data"]["signIn"]["__typename"] == "AuthError"


async def test_an_unverified_email_never_takes_over_an_existing_account(oauth_client, provider):
    existing = await signed_up(oauth_client)
    provider.account = _person(existing["user"]["email"], email_verified=False)
    done = await _sign_in_with(oauth_client, "google")
    assert done == {"__typename": "AuthError", "code": "invalid_credentials",
                    "message": "the provider has not verified this email; sign in with your password"}


async def test_a_state_works_once_and_only_for_its_flow(oauth_client, provider):
    provider.account = _person(f"state-{uuid.uuid4().hex[:6]}@example.com")
    started = await _start(oauth_client, "google")
    returned = await _browser_consents(started["authorizationUrl"])
    forged = await graphql(oauth_client, COMPLETE, p="google", code=returned["code"], state="forged-state")
    assert forged["data"]["completeOAuth"]["code"] == "invalid_token"
    first = await graphql(oauth_client, COMPLETE, p="google", code=returned["code"], state=returned["state"])
    assert first["data"]["completeOAuth"]["__typename"] == "AuthPayload"
    replay = await graphql(oauth_client, COMPLETE, p="google", code=returned["code"], state=returned["state"])
    assert replay["data"]["completeOAuth"]["code"] == "invalid_token"


async def test_a_code_from_another_flow_fails_pkce(oauth_client, provider):
    provider.account = _person(f"pkce-{uuid.uuid4().hex[:6]}@example.com")
    first = await _browser_consents((await _start(oauth_client, "google"))["authorizationUrl"])
    second = await _start(oauth_client, "google")  # another flow: another verifier
    mixed = await graphql(oauth_client, COMPLETE, p="google", code=first["code"], state=second["state"])
    answer = mixed["data"]["completeOAuth"]
    assert answer["code"] == "invalid_credentials" and "refused" in answer["message"]


@pytest.mark.parametrize("tamper", ["aud", "nonce", "signature"])
async def test_an_id_token_that_does_not_verify_is_refused(oauth_client, provider, tamper):
    provider.account = _person(f"tamper-{tamper}-{uuid.uuid4().hex[:6]}@example.com")
    provider.tamper = tamper
    done = await _sign_in_with(oauth_client, "google")
    assert done["code"] == "invalid_credentials" and "does not verify" in done["message"]


async def test_an_unknown_provider_is_a_typed_error(oauth_client):
    answer = (await graphql(oauth_client, START, p="myspace"))["data"]["startOAuth"]
    assert answer["__typename"] == "InvalidInputError" and "myspace" in answer["message"]


async def test_providers_are_off_unless_configured(client):
    answer = (await graphql(client, START, p="google"))["data"]["startOAuth"]
    assert answer["__typename"] == "InvalidInputError" and "none configured" in answer["message"]
