"""Identity wiring: password hashing, tokens, mail, OAuth providers, and the identity use cases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from dependency_injector import providers

from src.adapters.auth.jwt_tokens import JwtAccessTokenCodec, generate_private_pem
from src.adapters.auth.oauth import GitHubProvider, OAuthClientConfig, OidcProvider
from src.adapters.auth.passwords import Argon2PasswordHasher
from src.adapters.postgres.identity.emails import OutboxEmailSender
from src.adapters.postgres.identity.signing_keys import PgSigningKeyStore
from src.config import Settings
from src.core.identity import account_data, accounts, api_keys, audit_trail, oauth, password_reset, sessions, users
from src.core.identity import workspaces as ws
from src.core.identity.config import IdentityConfig
from src.ports.identity import OAuthProvider
from src.wiring.foundation import Foundation

F = Foundation


def identity_config(settings: Settings) -> IdentityConfig:
    return IdentityConfig(access_ttl=timedelta(minutes=settings.access_token_minutes),
                          refresh_ttl=timedelta(days=settings.refresh_token_days), public_url=settings.public_url,
                          sign_ups_per_ip=settings.sign_ups_per_address_hourly,
                          resets_per_ip=settings.reset_mails_per_address_hourly)


def oauth_providers(settings: Settings) -> dict[str, OAuthProvider]:
    """Only providers with a client id are on."""
    found: dict[str, OAuthProvider] = {}
    if settings.oauth_google_client_id:
        client = OAuthClientConfig(settings.oauth_google_client_id, settings.oauth_google_client_secret or "")
        found["google"] = OidcProvider("google", client, settings.oauth_google_discovery_url)
    if settings.oauth_github_client_id:
        client = OAuthClientConfig(settings.oauth_github_client_id, settings.oauth_github_client_secret or "")
        found["github"] = GitHubProvider(client, settings.oauth_github_web_url, settings.oauth_github_api_url)
    return found


def redirect_url_for(settings: Settings) -> Callable[[str], str]:
    return lambda provider: settings.oauth_redirect_url.replace("{provider}", provider)


def jwt_codec(settings: Settings, keys: PgSigningKeyStore) -> JwtAccessTokenCodec:
    async def private_pem() -> str:
        return settings.jwt_private_key or await keys.load_or_create("access-token-ed25519", generate_private_pem)

    return JwtAccessTokenCodec(private_pem, issuer=settings.public_url)


class IdentityWiring(Foundation):
    identity = providers.Singleton(identity_config, F.settings)
    hasher = providers.Singleton(Argon2PasswordHasher, time_cost=F.settings.provided.password_hash_time_cost,
                                 memory_cost=F.settings.provided.password_hash_memory_kib,
                                 threads=F.settings.provided.password_hash_threads)
    token_codec = providers.Singleton(jwt_codec, F.settings, providers.Singleton(PgSigningKeyStore, F.session_factory))
    mailer = providers.Singleton(OutboxEmailSender, F.session_factory)
    oauth_providers = providers.Singleton(oauth_providers, F.settings)
    session_issuer = providers.Singleton(sessions.SessionIssuer, token_codec, F.clock, identity)

    authenticate = providers.Factory(sessions.Authenticate, F.identity_reads.provider, token_codec, F.clock)
    authenticate_api_key = providers.Factory(api_keys.AuthenticateApiKey, F.identity_uow.provider, F.clock)
    find_ended_credentials = providers.Factory(sessions.FindEndedCredentials, F.identity_reads.provider)
    sign_up = providers.Factory(accounts.SignUp, F.identity_uow.provider, hasher, session_issuer, F.clock, identity)
    sign_in = providers.Factory(accounts.SignIn, F.identity_uow.provider, hasher, session_issuer, F.clock, identity)
    change_password = providers.Factory(accounts.ChangePassword, F.identity_uow.provider, hasher, F.clock)
    export_account_data = providers.Factory(account_data.ExportAccountData, F.identity_uow.provider, F.clock)
    erase_account = providers.Factory(account_data.EraseAccount, F.identity_uow.provider, hasher, F.clock,
                                      F.entitlements)
    refresh_session = providers.Factory(sessions.RefreshSession, F.identity_uow.provider, session_issuer, F.clock)
    sign_out = providers.Factory(sessions.SignOut, F.identity_uow.provider, F.clock)
    request_password_reset = providers.Factory(password_reset.RequestPasswordReset, F.identity_uow.provider, mailer,
                                               F.clock, identity)
    reset_password = providers.Factory(password_reset.ResetPassword, F.identity_uow.provider, hasher, F.clock)
    list_oauth_providers = providers.Factory(oauth.ListOAuthProviders, oauth_providers)
    start_oauth = providers.Factory(oauth.StartOAuth, F.identity_uow.provider, oauth_providers, F.clock, identity,
                                    providers.Callable(redirect_url_for, F.settings))
    complete_oauth = providers.Factory(oauth.CompleteOAuth, F.identity_uow.provider, oauth_providers, session_issuer,
                                       F.clock)
    create_workspace = providers.Factory(ws.CreateWorkspace, F.identity_uow.provider, F.clock)
    list_workspaces = providers.Factory(ws.ListWorkspaces, F.identity_uow.provider, F.clock)
    get_workspace = providers.Factory(ws.GetWorkspace, F.identity_uow.provider, F.clock)
    rename_workspace = providers.Factory(ws.RenameWorkspace, F.identity_uow.provider, F.clock)
    delete_workspace = providers.Factory(ws.DeleteWorkspace, F.identity_uow.provider, F.clock)
    list_members = providers.Factory(ws.ListMembers, F.identity_uow.provider, F.clock)
    set_member = providers.Factory(ws.SetMember, F.identity_uow.provider, F.clock, F.entitlements)
    remove_member = providers.Factory(ws.RemoveMember, F.identity_uow.provider, F.clock)
    create_api_key = providers.Factory(api_keys.CreateApiKey, F.identity_uow.provider, F.clock)
    revoke_api_key = providers.Factory(api_keys.RevokeApiKey, F.identity_uow.provider, F.clock)
    list_api_keys = providers.Factory(api_keys.ListApiKeys, F.identity_uow.provider)
    query_audit_log = providers.Factory(audit_trail.QueryAuditLog, F.identity_uow.provider)
    get_current_user = providers.Factory(users.GetCurrentUser, F.identity_uow.provider)
    list_users = providers.Factory(users.ListUsers, F.identity_reads.provider)
    set_user_role = providers.Factory(users.SetUserRole, F.identity_uow.provider, F.clock)
    grant_role_from_console = providers.Factory(users.GrantRoleFromConsole, F.identity_uow.provider, F.clock)
