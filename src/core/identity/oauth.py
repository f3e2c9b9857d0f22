"""OAuth sign-in (authorization code + PKCE + state, nonce for OIDC): start, then complete."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from src.core.identity.audit_trail import audit
from src.core.identity.config import IdentityConfig
from src.core.identity.sessions import AuthTokens, SessionIssuer
from src.core.identity.values import check_name, hash_secret, new_secret, normalise_email
from src.core.identity.workspaces import create_workspace_for
from src.ports.identity import (
    ClientInfo,
    IdentityUnitOfWork,
    InvalidCredentials,
    InvalidToken,
    OAuthProfile,
    OAuthProvider,
    OAuthState,
    User,
)
from src.ports.shared import Clock, InvalidInput


@dataclass(frozen=True, slots=True)
class OAuthStart:
    authorization_url: str
    state: str


def _provider(providers: Mapping[str, OAuthProvider], name: str) -> OAuthProvider:
    provider = providers.get(name)
    if provider is None:
        known = ", ".join(sorted(providers)) or "none configured"
        raise InvalidInput(f"unknown OAuth provider {name!r} ({known})", field="provider")
    return provider


class ListOAuthProviders:
    """- The providers a person may sign in with (those configured), for a sign-in page's buttons."""

    def __init__(self, providers: Mapping[str, OAuthProvider]) -> None:
        self._providers = providers

    async def execute(self) -> list[str]:
        return sorted(self._providers)


class StartOAuth:
    """- A fresh state, PKCE verifier and nonce, kept server-side for a few minutes, used once."""

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], providers: Mapping[str, OAuthProvider],
                 clock: Clock, config: IdentityConfig, redirect_uri: Callable[[str], str]) -> None:
        self._uow, self._providers, self._clock, self._config = uow, providers, clock, config
        self._redirect_uri = redirect_uri

    async def execute(self, provider_name: str) -> OAuthStart:
        provider = _provider(self._providers, provider_name)
        state, verifier, nonce = new_secret(), new_secret(48), new_secret(16)
        redirect_uri = self._redirect_uri(provider_name)
        async with self._uow() as uow:
            await uow.oauth.add_state(OAuthState(hash_secret(state), provider_name, verifier, nonce, redirect_uri,
                                                 self._clock.now() + self._config.oauth_state_ttl))
            await uow.commit()
        url = await provider.authorization_url(state=state, code_verifier=verifier, nonce=nonce,
                                               redirect_uri=redirect_uri)
        return OAuthStart(url, state)


class CompleteOAuth:
    """- The state must be one we issued, for this provider, unexpired; it is consumed either way.
    - Known provider identity: sign in. Else link to the account with the same *verified* email, or create
      an account (with a personal workspace). An unverified email never links to an existing account.
    - The provider is called with no transaction open.
    """

    def __init__(self, uow: Callable[[], IdentityUnitOfWork], providers: Mapping[str, OAuthProvider],
                 issuer: SessionIssuer, clock: Clock) -> None:
        self._uow, self._providers, self._issuer, self._clock = uow, providers, issuer, clock

    async def execute(self, provider_name: str, code: str, state: str, client: ClientInfo) -> AuthTokens:
        provider = _provider(self._providers, provider_name)
        async with self._uow() as uow:
            saved = await uow.oauth.take_state(hash_secret(state or ""))
            await uow.commit()
        if saved is None or saved.provider != provider_name or saved.expires_at <= self._clock.now():
            raise InvalidToken("this sign-in link expired or was already used; start again")
        profile = await provider.fetch_profile(code=code, code_verifier=saved.code_verifier, nonce=saved.nonce,
                                               redirect_uri=saved.redirect_uri)
        now = self._clock.now()
        async with self._uow() as uow:
            user, created = await self._user_for(uow, profile, now)
            await audit(uow, now, "user.signed_up" if created else "auth.signed_in", user.id, client,
                        details={"method": f"oauth:{provider_name}"})
            tokens = await self._issuer.start(uow, user, client)
            await uow.commit()
        return tokens

    async def _user_for(self, uow: IdentityUnitOfWork, profile: OAuthProfile,
                        now: datetime) -> tuple[User, bool]:
        linked = await uow.oauth.user_for(profile.provider, profile.subject)
        if linked is not None:
            user = await uow.users.get(linked)
            if user is not None:
                return user, False
        if not profile.email:
            raise InvalidCredentials("the provider did not share an email address; Keel needs one")
        email = normalise_email(profile.email)
        existing = await uow.users.by_email(email)
        if existing is not None:
            if not profile.email_verified:
                raise InvalidCredentials("the provider has not verified this email; sign in with your password")
            if not existing.email_verified:
                # Nobody ever proved owning this email, so whoever set its password may be an impostor who
                # registered it first: the verified owner takes the account over, password and sessions go.
                existing = replace(existing, email_verified=True, password_hash=None)
                await uow.users.save(existing)
                await uow.sessions.revoke_all_of_user(existing.id, now)
            await uow.oauth.link(profile.provider, profile.subject, existing.id, email)
            return existing, False
        name = check_name(profile.name or email.split("@")[0], limit=100)
        user = User(uuid.uuid4(), email, now, email_verified=profile.email_verified, display_name=name)
        await uow.users.add(user)
        await create_workspace_for(uow, user, f"{name}'s workspace", now)
        await uow.oauth.link(profile.provider, profile.subject, user.id, email)
        return user, True
