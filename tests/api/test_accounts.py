"""Email/password accounts: sign-up, sign-in, throttling, rehash, password change and reset, audit."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

from sqlalchemy import text

from src.adapters.auth.passwords import Argon2PasswordHasher
from src.container import build_container, shutdown
from src.main import create_app
from tests.conftest import (
    NO_RATE_LIMITS,
    PASSWORD,
    SIGN_UP,
    asgi_client,
    graphql,
    keel_app,
    signed_up,
    signed_up_admin,
)

SIGN_IN = """mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { __typename
  ... on AuthPayload { accessToken refreshToken user { id email } }
  ... on TooManyAttemptsError { retryAfterSeconds } ... on Error { code message } } }"""
CHANGE = """mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) {
  __typename ... on Error { code message } ... on InvalidInputError { field } } }"""
REQUEST_RESET = "mutation($e: String!) { requestPasswordReset(email: $e) { __typename } }"
RESET = """mutation($t: String!, $n: String!) { resetPassword(token: $t, newPassword: $n) {
  __typename ... on Error { code message } } }"""
AUDIT = """query($action: String) { auditLog(action: $action, limit: 200) {
  action actorId subject clientIp userAgent details } }"""


def _email() -> str:
    return f"person-{uuid.uuid4().hex[:8]}@example.com"


async def _sign_in(client, email: str, password: str = PASSWORD) -> dict:
    return (await graphql(client, SIGN_IN, e=email, p=password))["data"]["signIn"]


async def test_sign_up_normalises_the_email_and_makes_a_personal_workspace(client):
    email = _email()
    account = await signed_up(client, f"  {email.upper()} ")
    assert account["user"]["email"] == email
    assert [w["myRole"] for w in account["user"]["workspaces"]] == ["OWNER"]
    assert (await _sign_in(client, email))["user"]["id"] == account["user"]["id"]


async def test_a_taken_email_is_refused_without_saying_more(client):
    email = _email()
    await signed_up(client, email)
    again = (await graphql(client, SIGN_UP, email=email.upper(), password="another long password"))["data"]["signUp"]
    assert again == {"__typename": "AuthError", "code": "email_taken",
                     "message": "this email cannot be used to sign up; sign in or reset the password instead"}


async def test_bad_input_names_the_field(client):
    cases = [("not-an-email", PASSWORD, "email"), (_email(), "short", "password"),
             (_email(), "aaaaaaaaaaaaaa", "password"), (_email(), "x" * 300, "password")]
    for email, password, field in cases:
        body = await graphql(client, SIGN_UP.replace("... on Error { code message }",
                                                     "... on InvalidInputError { code field message }"),
                             email=email, password=password)
        assert body["data"]["signUp"]["__typename"] == "InvalidInputError"
        assert body["data"]["signUp"]["field"] == field


async def test_wrong_password_and_unknown_account_look_the_same(client):
    email = _email()
    await signed_up(client, email)
    wrong = await _sign_in(client, email, "not the password at all")
    unknown = await _sign_in(client, _email())
    assert wrong == unknown == {"__typename": "AuthError", "code": "invalid_credentials",
                                "message": "wrong email or password"}


async def test_failed_sign_ins_stop_that_address_and_only_slow_the_account_elsewhere(client, settings, container):
    email = _email()
    await signed_up(client, email)
    for _ in range(5):
        assert (await _sign_in(client, email, "wrong password 123"))["code"] == "invalid_credentials"
    throttled = await _sign_in(client, email)  # even the right password, from here, for the window
    assert throttled["__typename"] == "TooManyAttemptsError" and throttled["retryAfterSeconds"] > 60
    # Elsewhere the account is slowed, not locked: the guesser cannot lock its owner out.
    async with asgi_client(create_app(settings, container)) as elsewhere:
        slowed = await _sign_in(elsewhere, email)
        if slowed["__typename"] == "TooManyAttemptsError":
            assert slowed["retryAfterSeconds"] <= 2
            await asyncio.sleep(slowed["retryAfterSeconds"])
            slowed = await _sign_in(elsewhere, email)
        assert slowed["__typename"] == "AuthPayload"


async def test_concurrent_wrong_passwords_are_checked_at_most_the_limit(settings, container):
    email = _email()
    async with keel_app(settings, **NO_RATE_LIMITS) as app, asgi_client(app) as client:
        await signed_up(client, email)
        answers = await asyncio.gather(*(_sign_in(client, email, f"wrong guess {n}") for n in range(30)))
    checked = [a for a in answers if a["__typename"] == "AuthError"]
    assert len(checked) <= 5 and len(checked) + sum(a["__typename"] == "TooManyAttemptsError" for a in answers) == 30
    async with container.engine().connect() as connection:
        audited = (await connection.execute(text(
            "SELECT count(*) FROM audit_events WHERE action = 'auth.sign_in_failed' AND subject = :e"),
            {"e": email})).scalar_one()
    assert audited == len(checked)


async def test_a_password_reset_lifts_the_account_slowdown(client, settings, container):
    email = _email()
    await signed_up(client, email)
    for n in range(4):  # guesses from several addresses: the account slows down everywhere
        async with asgi_client(create_app(settings, container)) as guesser:
            for _ in range(3):
                await _sign_in(guesser, email, f"guess {n}")
    async with asgi_client(create_app(settings, container)) as owner:
        assert (await _sign_in(owner, email))["__typename"] == "TooManyAttemptsError"
        await graphql(owner, REQUEST_RESET, e=email)
        token = re.search(r"\n\n(\S+)\n\n", (await _mails_to(container, email))[-1]).group(1)
        assert (await graphql(owner, RESET, t=token, n="a brand new password"))["data"]["resetPassword"][
            "__typename"] == "Ok"
        assert (await _sign_in(owner, email, "a brand new password"))["__typename"] == "AuthPayload"


async def test_sign_ups_and_reset_mails_are_limited_per_address(settings, container):
    async with asgi_client(create_app(settings, container)) as client:
        for _ in range(10):
            await signed_up(client)
        refused = (await graphql(client, SIGN_UP, email=_email(), password=PASSWORD))["data"]["signUp"]
        assert refused["__typename"] == "TooManyAttemptsError"
    async with asgi_client(create_app(settings, container)) as client:
        for _ in range(10):
            assert (await graphql(client, REQUEST_RESET, e=_email()))["data"]["requestPasswordReset"][
                "__typename"] == "Ok"
        refused = (await graphql(client, REQUEST_RESET, e=_email()))["data"]["requestPasswordReset"]
        assert refused["__typename"] == "TooManyAttemptsError"


async def test_the_event_loop_keeps_serving_while_passwords_are_hashed(settings):
    """With production-strength argon2 a hash takes tens of milliseconds; were it hashed on the event loop,
    every health check that arrives during a hash would wait for it."""
    production = {"password_hash_memory_kib": 65_536, "password_hash_time_cost": 3}
    hasher = Argon2PasswordHasher(time_cost=3, memory_cost=65_536)
    started = time.perf_counter()
    await hasher.hash("one hash, for scale")
    hash_ms = (time.perf_counter() - started) * 1000
    hasher.close()
    async with keel_app(settings, **NO_RATE_LIMITS, **production) as app, asgi_client(app) as client:
        async def health_ms() -> float:
            started = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            return (time.perf_counter() - started) * 1000

        email = _email()
        await signed_up(client, email)
        sign_ins = asyncio.gather(*(_sign_in(client, email, f"guess {n}") for n in range(10)))
        busy = []
        while not sign_ins.done():
            busy.append(await health_ms())
        await sign_ins
    held_up = [ms for ms in busy if ms > hash_ms / 2]
    # a health check may be slower while two cores hash (CPU contention), but none waits for a whole hash
    assert len(busy) >= 10 and len(held_up) <= len(busy) / 10, (hash_ms, busy)


async def test_failed_sign_ins_are_throttled_per_address(client, settings, container):
    for _ in range(20):
        await _sign_in(client, _email(), "guessing passwords")
    email = _email()
    async with asgi_client(create_app(settings, container)) as elsewhere:
        await signed_up(elsewhere, email)
    assert (await _sign_in(client, email))["__typename"] == "TooManyAttemptsError"
    async with asgi_client(create_app(settings, container)) as elsewhere:
        assert (await _sign_in(elsewhere, email))["__typename"] == "AuthPayload"


async def test_a_sign_in_rehashes_when_the_parameters_changed(settings, client, container):
    email = _email()
    await signed_up(client, email)
    stronger = build_container(settings)
    stronger.hasher.override(Argon2PasswordHasher(time_cost=4))
    async with asgi_client(create_app(settings, stronger)) as other:
        assert (await _sign_in(other, email))["__typename"] == "AuthPayload"
    async with container.engine().connect() as connection:
        stored = (await connection.execute(text("SELECT password_hash FROM users WHERE email = :e"),
                                           {"e": email})).scalar_one()
    await shutdown(stronger)
    assert stored.startswith("$argon2id$") and ",t=4," in stored


async def test_changing_the_password_signs_out_the_other_sessions(client):
    email = _email()
    account = await signed_up(client, email)
    other = await _sign_in(client, email)
    wrong = (await graphql(client, CHANGE, c="not it at all", n="a new long password", token=account["accessToken"]))
    assert wrong["data"]["changePassword"]["code"] == "invalid_credentials"
    weak = await graphql(client, CHANGE, c=PASSWORD, n="short", token=account["accessToken"])
    assert weak["data"]["changePassword"]["field"] == "newPassword"
    done = await graphql(client, CHANGE, c=PASSWORD, n="a new long password", token=account["accessToken"])
    assert done["data"]["changePassword"] == {"__typename": "Ok"}
    assert (await graphql(client, "{ me { id } }", token=other["accessToken"]))["errors"]
    assert (await graphql(client, "{ me { id } }", token=account["accessToken"]))["data"]["me"]
    assert (await _sign_in(client, email))["code"] == "invalid_credentials"
    assert (await _sign_in(client, email, "a new long password"))["__typename"] == "AuthPayload"


async def _mails_to(container, email: str) -> list[str]:
    async with container.engine().connect() as connection:
        rows = await connection.execute(text("SELECT body FROM email_outbox WHERE recipient = :e ORDER BY created_at"),
                                        {"e": email})
        return [row[0] for row in rows]


async def test_password_reset_by_mailed_code_works_once(client, container):
    email = _email()
    account = await signed_up(client, email)
    assert (await graphql(client, REQUEST_RESET, e=email))["data"]["requestPasswordReset"] == {"__typename": "Ok"}
    (mail,) = await _mails_to(container, email)
    code = re.search(r"\n\n(\S+)\n\n", mail).group(1)
    done = (await graphql(client, RESET, t=code, n="brand new password 1"))["data"]["resetPassword"]
    assert done == {"__typename": "Ok"}
    assert (await _sign_in(client, email, "brand new password 1"))["__typename"] == "AuthPayload"
    assert (await graphql(client, "{ me { id } }", token=account["accessToken"]))["errors"]  # sessions ended
    again = (await graphql(client, RESET, t=code, n="another password 22"))["data"]["resetPassword"]
    assert again["code"] == "invalid_token"


async def test_a_reset_for_an_unknown_email_answers_the_same_and_mails_nothing(client, container):
    email = _email()
    assert (await graphql(client, REQUEST_RESET, e=email))["data"]["requestPasswordReset"] == {"__typename": "Ok"}
    assert await _mails_to(container, email) == []


async def test_reset_mails_are_limited_per_account(client, container):
    email = _email()
    await signed_up(client, email)
    for _ in range(5):
        await graphql(client, REQUEST_RESET, e=email)
    assert len(await _mails_to(container, email)) == 3


async def test_the_audit_log_records_who_when_and_from_where(client, container):
    email = _email()
    account = await signed_up(client, email)
    await _sign_in(client, email, "wrong password 123")
    await _sign_in(client, email)
    admin = await signed_up_admin(client, container)
    events = (await graphql(client, AUDIT, action=None, token=admin["accessToken"]))["data"]["auditLog"]
    mine = [e for e in events if e["actorId"] == account["user"]["id"] or e["subject"] == email]
    actions = {e["action"] for e in mine}
    assert {"user.signed_up", "auth.sign_in_failed", "auth.signed_in"} <= actions
    assert all(e["clientIp"].startswith("10.") and e["userAgent"] == "keel-tests" for e in mine)
    role_changes = (await graphql(client, AUDIT, action="user.role_changed", token=admin["accessToken"]))
    change = next(e for e in role_changes["data"]["auditLog"] if e["subject"] == admin["user"]["id"])
    assert change["details"] == {"before": "user", "after": "admin"}


async def test_only_admins_read_the_audit_log(client):
    account = await signed_up(client)
    body = await graphql(client, AUDIT, action=None, token=account["accessToken"])
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


USERS = """query($s: String!, $n: Int!) { users(search: $s, first: $n) { id email role } }"""
SET_ROLE = """mutation($u: ID!, $r: Role!) { setUserRole(userId: $u, role: $r) { __typename ... on User { role } } }"""


async def test_admins_find_accounts_by_email_and_change_their_role(client, container):
    admin = await signed_up_admin(client, container)
    tag = uuid.uuid4().hex[:8]
    people = [await signed_up(client, f"{tag}{suffix}@example.com") for suffix in ("-a", "_b", "%c")]
    token = admin["accessToken"]
    found = (await graphql(client, USERS, s=tag, n=10, token=token))["data"]["users"]
    assert [user["email"] for user in found] == [f"{tag}%c@example.com", f"{tag}_b@example.com", f"{tag}-a@example.com"]
    only = (await graphql(client, USERS, s=f"{tag}_", n=10, token=token))["data"]["users"]  # `_` is no wildcard
    assert [user["email"] for user in only] == [f"{tag}_b@example.com"]
    assert len((await graphql(client, USERS, s="", n=2, token=token))["data"]["users"]) == 2
    too_many = await graphql(client, USERS, s="", n=1000, token=token)
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    promoted = (await graphql(client, SET_ROLE, u=people[0]["user"]["id"], r="ADMIN", token=token))["data"]
    assert promoted["setUserRole"]["role"] == "ADMIN"
    refused = await graphql(client, USERS, s=tag, n=10, token=people[1]["accessToken"])
    assert refused["data"] is None and refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
