"""Composition root: the one place that picks adapters and wires them into the core's use cases."""

from __future__ import annotations

import logging
from datetime import timedelta

from dependency_injector import containers, providers

from src.adapters.auth.jwt_tokens import JwtAccessTokenCodec, generate_private_pem
from src.adapters.auth.oauth import GitHubProvider, OAuthClientConfig, OidcProvider
from src.adapters.auth.passwords import Argon2PasswordHasher
from src.adapters.clock import SystemClock
from src.adapters.documents.pdf import PypdfReader
from src.adapters.embeddings.registry import EmbedderRegistry, EmbeddingOptions
from src.adapters.extraction.offline import OfflineExtractor
from src.adapters.llm.models import ModelRegistry, ProviderKeys
from src.adapters.llm.prompts import FilePromptLibrary
from src.adapters.llm.tokens import TiktokenCounter
from src.adapters.memory.rate_limits import ProcessRateLimiter
from src.adapters.postgres.engine import make_engine, make_read_session_factory, make_session_factory
from src.adapters.postgres.health import PostgresHealthProbe
from src.adapters.postgres.keyword_index import PgKeywordIndex
from src.adapters.postgres.outbox import OutboxEmailSender
from src.adapters.postgres.rate_limits import PgRateLimiter
from src.adapters.postgres.search import PgSearchSettings
from src.adapters.postgres.signing_keys import PgSigningKeyStore
from src.adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from src.adapters.queue.broker import make_broker
from src.adapters.queue.job_queue import DramatiqJobQueue
from src.adapters.redis.rate_limits import RedisRateLimiter
from src.adapters.stripe.payments import StripeNotConfigured, StripePayments
from src.config import Settings
from src.core.billing import checkout, views
from src.core.billing.entitlements import BillingConfig, CheckEntitlement
from src.core.billing.plans import load_catalogue
from src.core.billing.reconcile import RECONCILE_JOB, Reconcile, RequestReconciliation
from src.core.billing.webhooks import HandleStripeEvent
from src.core.conversation import conversations as convs
from src.core.conversation.chat import SendMessage
from src.core.conversation.live import LiveAnswers
from src.core.conversation.progress import (
    RECOVER_JOB,
    FollowMessage,
    RecoverStalledAnswers,
    SaveAnswerProgress,
    StopAnswer,
)
from src.core.edge.rate_limits import DEFAULT_COSTS, Admission, RateLimitConfig
from src.core.identity import accounts, api_keys, audit_trail, oauth, password_reset, sessions, users
from src.core.identity import authorize as authz
from src.core.identity import workspaces as ws
from src.core.identity.config import IdentityConfig
from src.core.knowledge import documents as docs
from src.core.knowledge.config import KnowledgeConfig
from src.core.knowledge.extraction import LlmExtraction
from src.core.knowledge.graph import BuildDocumentGraph
from src.core.knowledge.graph_queries import ExploreEntity, FindPath, RecentEntities, SearchEntities
from src.core.knowledge.ingestion import (
    KEYWORD_INDEX_JOB,
    REQUEUE_JOB,
    CheckKeywordIndex,
    GiveUpIngestion,
    IngestDocuments,
    RequeueStuckDocuments,
)
from src.core.knowledge.search import Search, SearchWorkspace
from src.core.knowledge.spaces import Reembed, SyncEmbeddingSpace
from src.core.llm.calls import ModelCalls
from src.core.llm.resilience import Breakers
from src.core.system.health import CheckHealth
from src.core.system.probes import GetWorkerProbe, ProcessWorkerProbe, RequestWorkerProbe, WatchWorkerProbe
from src.core.system.schedules import EnqueueDueJobs, RelayJobs
from src.ports.conversation import ChatSettings
from src.ports.edge import RateLimiter
from src.ports.graph import EntityExtractor
from src.ports.knowledge import SearchMode
from src.ports.models import CallSettings
from src.ports.system import Schedule
from src.wiring.retrieval import KnowledgeRetriever

log = logging.getLogger(__name__)
GRAPH_PROMPT = "graph_extraction"


def identity_config(settings: Settings) -> IdentityConfig:
    return IdentityConfig(access_ttl=timedelta(minutes=settings.access_token_minutes),
                          refresh_ttl=timedelta(days=settings.refresh_token_days), public_url=settings.public_url,
                          sign_ups_per_ip=settings.sign_ups_per_address_hourly,
                          resets_per_ip=settings.reset_mails_per_address_hourly)


def oauth_providers(settings: Settings) -> dict:
    """Only providers with a client id are on."""
    found = {}
    if settings.oauth_google_client_id:
        client = OAuthClientConfig(settings.oauth_google_client_id, settings.oauth_google_client_secret or "")
        found["google"] = OidcProvider("google", client, settings.oauth_google_discovery_url)
    if settings.oauth_github_client_id:
        client = OAuthClientConfig(settings.oauth_github_client_id, settings.oauth_github_client_secret or "")
        found["github"] = GitHubProvider(client, settings.oauth_github_web_url, settings.oauth_github_api_url)
    return found


def knowledge_config(settings: Settings) -> KnowledgeConfig:
    return KnowledgeConfig(max_document_bytes=settings.max_document_bytes, chunk_chars=settings.chunk_chars,
                           chunk_overlap_chars=settings.chunk_overlap_chars,
                           embed_batch_size=settings.embedding_batch_size,
                           fusion=settings.search_fusion, keyword_weight=settings.search_keyword_weight,
                           graph=settings.graph_build, graph_seeds=settings.graph_seeds, graph_hops=settings.graph_hops,
                           graph_fan_out=settings.graph_fan_out, graph_weight=settings.graph_weight,
                           graph_hub_mentions=settings.graph_hub_mentions,
                           graph_merge_similarity=settings.graph_merge_similarity)


def llm_extraction(settings: Settings, uow, calls: ModelCalls, entitlements, counter: TiktokenCounter,
                   prompts: FilePromptLibrary, offline: EntityExtractor) -> LlmExtraction | None:
    """Extraction by a model when KEEL_GRAPH_EXTRACTOR=llm and the model's provider is configured."""
    if settings.graph_extractor != "llm":
        return None
    if not calls.routes((settings.graph_extractor_model,)) or settings.graph_extractor_model == "offline":
        log.warning("KEEL_GRAPH_EXTRACTOR=llm but %s has no configured provider: extracting offline",
                    settings.graph_extractor_model)
        return None
    return LlmExtraction(uow, calls, entitlements, counter, settings.graph_extractor_model,
                         prompts.get(GRAPH_PROMPT), offline)


def embedding_options(settings: Settings) -> EmbeddingOptions:
    return EmbeddingOptions(model=settings.embedding_model, batch_size=settings.embedding_batch_size,
                            threads=settings.embedding_threads, max_seq_length=settings.embedding_max_seq_length,
                            openai_api_key=settings.openai_api_key, openai_base_url=settings.openai_base_url,
                            openai_dimensions=settings.embedding_dimensions)


def plan_catalogue(settings: Settings):
    plans_json = settings.plans_file.read_text() if settings.plans_file else None
    return load_catalogue(plans_json, settings.price_ids())


def billing_config(settings: Settings) -> BillingConfig:
    return BillingConfig(grace_period=timedelta(days=settings.billing_grace_days))


def payment_provider(settings: Settings):
    if not settings.stripe_api_key:
        return StripeNotConfigured()
    return StripePayments(settings.stripe_api_key, settings.stripe_api_base)


def schedules(settings: Settings) -> list[Schedule]:
    found = []
    if settings.billing_reconcile_hour_utc >= 0:
        found.append(Schedule(RECONCILE_JOB, timedelta(days=1), timedelta(hours=settings.billing_reconcile_hour_utc)))
    if settings.keyword_index_check_minutes > 0:
        found.append(Schedule(KEYWORD_INDEX_JOB, timedelta(minutes=settings.keyword_index_check_minutes)))
    found.append(Schedule(RECOVER_JOB, timedelta(minutes=1)))  # answers whose process died
    found.append(Schedule(REQUEUE_JOB, timedelta(minutes=5)))  # documents whose ingestion job was lost
    return found


def chat_settings(settings: Settings) -> ChatSettings:
    return ChatSettings(
        max_input_chars=settings.chat_max_input_chars, max_output_tokens=settings.chat_max_output_tokens,
        history_messages=settings.chat_history_messages, retrieval_k=settings.chat_retrieval_k,
        checkpoint_seconds=settings.chat_checkpoint_seconds, stalled_after_seconds=settings.chat_stalled_after_seconds)


def call_settings(settings: Settings) -> CallSettings:
    return CallSettings(
        models=tuple(settings.chat_models.split(",")), max_attempts=settings.chat_max_attempts,
        retry_base_seconds=settings.chat_retry_base_seconds, retry_max_seconds=settings.chat_retry_max_seconds,
        breaker_failures=settings.chat_breaker_failures,
        breaker_cooldown_seconds=settings.chat_breaker_cooldown_seconds,
        first_token_timeout_seconds=settings.chat_first_token_timeout_seconds,
        user_daily_tokens=settings.chat_user_daily_tokens)


def chat_models(settings: Settings) -> ModelRegistry:
    keys = ProviderKeys(settings.openai_api_key, settings.openai_base_url, settings.anthropic_api_key,
                        settings.anthropic_base_url, settings.chat_request_timeout_seconds)
    return ModelRegistry(keys, settings.chat_model_table)


def shared_rate_limiter(settings: Settings, engine) -> RateLimiter:
    return RedisRateLimiter(settings.redis_url) if settings.redis_url else PgRateLimiter(engine)


def rate_limit_config(settings: Settings) -> RateLimitConfig:
    return RateLimitConfig(anonymous_per_minute=settings.rate_anonymous_per_minute,
                           user_per_minute=settings.rate_user_per_minute,
                           api_key_per_minute=settings.rate_api_key_per_minute,
                           process_per_second=settings.rate_process_per_second,
                           costs={**DEFAULT_COSTS, **settings.rate_cost_overrides()})


def redirect_url_for(settings: Settings):
    return lambda provider: settings.oauth_redirect_url.replace("{provider}", provider)


def jwt_codec(settings: Settings, keys: PgSigningKeyStore) -> JwtAccessTokenCodec:
    async def private_pem() -> str:
        return settings.jwt_private_key or await keys.load_or_create("access-token-ed25519", generate_private_pem)

    return JwtAccessTokenCodec(private_pem, issuer=settings.public_url)


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    engine = providers.Singleton(
        make_engine, url=settings.provided.sqlalchemy_url.call(), pool_size=settings.provided.db_pool_size,
        pool_timeout=settings.provided.db_pool_timeout_seconds
    )
    session_factory = providers.Singleton(make_session_factory, engine)
    broker = providers.Singleton(make_broker, url=settings.provided.broker_connection_url)
    jobs = providers.Singleton(DramatiqJobQueue, broker)
    search_settings = providers.Singleton(PgSearchSettings, ef_search=settings.provided.hnsw_ef_search)
    uow = providers.Factory(SqlAlchemyUnitOfWork, session_factory=session_factory, jobs=jobs,
                            search_settings=search_settings, graph_store=settings.provided.graph_store)
    # for use cases that only read, once per request (authentication, authorization, entitlements)
    read_uow = providers.Factory(SqlAlchemyUnitOfWork,
                                 session_factory=providers.Singleton(make_read_session_factory, engine),
                                 jobs=jobs, search_settings=search_settings)
    # who may do what: identity's policy, asked by every domain's use cases
    access = providers.Singleton(authz.Authorize, read_uow.provider)

    # system
    check_keyword_index = providers.Factory(CheckKeywordIndex, providers.Singleton(PgKeywordIndex, engine))
    check_health = providers.Factory(CheckHealth, probes=providers.List(providers.Factory(PostgresHealthProbe, engine)))
    request_worker_probe = providers.Factory(RequestWorkerProbe, uow=uow.provider, clock=clock, access=access)
    process_worker_probe = providers.Factory(ProcessWorkerProbe, uow=uow.provider, clock=clock)
    get_worker_probe = providers.Factory(GetWorkerProbe, uow=uow.provider, access=access)
    watch_worker_probe = providers.Factory(WatchWorkerProbe, get=get_worker_probe)
    enqueue_due_jobs = providers.Factory(EnqueueDueJobs, uow.provider, clock, providers.Callable(schedules, settings))
    relay_jobs = providers.Factory(RelayJobs, uow.provider, jobs, clock)

    # billing: what other modules check
    catalogue = providers.Singleton(plan_catalogue, settings)
    billing = providers.Singleton(billing_config, settings)
    entitlements = providers.Factory(CheckEntitlement, read_uow.provider, catalogue, clock)

    # identity: adapters
    identity = providers.Singleton(identity_config, settings)
    hasher = providers.Singleton(Argon2PasswordHasher, time_cost=settings.provided.password_hash_time_cost,
                                 memory_cost=settings.provided.password_hash_memory_kib,
                                 threads=settings.provided.password_hash_threads)
    token_codec = providers.Singleton(jwt_codec, settings, providers.Singleton(PgSigningKeyStore, session_factory))
    mailer = providers.Singleton(OutboxEmailSender, session_factory)
    oauth_providers = providers.Singleton(oauth_providers, settings)
    session_issuer = providers.Singleton(sessions.SessionIssuer, token_codec, clock, identity)
    # identity: use cases
    authenticate = providers.Factory(sessions.Authenticate, read_uow.provider, token_codec, clock)
    authenticate_api_key = providers.Factory(api_keys.AuthenticateApiKey, uow.provider, clock)
    find_ended_credentials = providers.Factory(sessions.FindEndedCredentials, read_uow.provider)
    sign_up = providers.Factory(accounts.SignUp, uow.provider, hasher, session_issuer, clock, identity)
    sign_in = providers.Factory(accounts.SignIn, uow.provider, hasher, session_issuer, clock, identity)
    change_password = providers.Factory(accounts.ChangePassword, uow.provider, hasher, clock)
    refresh_session = providers.Factory(sessions.RefreshSession, uow.provider, session_issuer, clock)
    sign_out = providers.Factory(sessions.SignOut, uow.provider, clock)
    request_password_reset = providers.Factory(password_reset.RequestPasswordReset, uow.provider, mailer, clock,
                                               identity)
    reset_password = providers.Factory(password_reset.ResetPassword, uow.provider, hasher, clock)
    start_oauth = providers.Factory(
        oauth.StartOAuth, uow.provider, oauth_providers, clock, identity,
        providers.Callable(redirect_url_for, settings),
    )
    complete_oauth = providers.Factory(oauth.CompleteOAuth, uow.provider, oauth_providers, session_issuer, clock)
    create_workspace = providers.Factory(ws.CreateWorkspace, uow.provider, clock)
    list_workspaces = providers.Factory(ws.ListWorkspaces, uow.provider, clock)
    get_workspace = providers.Factory(ws.GetWorkspace, uow.provider, clock)
    rename_workspace = providers.Factory(ws.RenameWorkspace, uow.provider, clock)
    delete_workspace = providers.Factory(ws.DeleteWorkspace, uow.provider, clock)
    list_members = providers.Factory(ws.ListMembers, uow.provider, clock)
    set_member = providers.Factory(ws.SetMember, uow.provider, clock, entitlements)
    remove_member = providers.Factory(ws.RemoveMember, uow.provider, clock)
    create_api_key = providers.Factory(api_keys.CreateApiKey, uow.provider, clock)
    revoke_api_key = providers.Factory(api_keys.RevokeApiKey, uow.provider, clock)
    list_api_keys = providers.Factory(api_keys.ListApiKeys, uow.provider)
    query_audit_log = providers.Factory(audit_trail.QueryAuditLog, uow.provider)
    get_current_user = providers.Factory(users.GetCurrentUser, uow.provider)
    set_user_role = providers.Factory(users.SetUserRole, uow.provider, clock)
    grant_role_from_console = providers.Factory(users.GrantRoleFromConsole, uow.provider, clock)


    # the edge: rate limits (shared through Postgres, or Redis when configured)
    rate_limiter = providers.Singleton(shared_rate_limiter, settings, engine)
    admission = providers.Singleton(Admission, rate_limiter, providers.Singleton(ProcessRateLimiter), entitlements,
                                    providers.Singleton(rate_limit_config, settings))

    # knowledge
    knowledge = providers.Singleton(knowledge_config, settings)
    embedders = providers.Singleton(EmbedderRegistry, providers.Singleton(embedding_options, settings))
    pdf_reader = providers.Singleton(PypdfReader)
    upload_documents = providers.Factory(docs.UploadDocuments, uow.provider, clock, knowledge, entitlements, access)
    get_document = providers.Factory(docs.GetDocument, uow.provider, access)
    list_documents = providers.Factory(docs.ListDocuments, uow.provider, access)
    delete_document = providers.Factory(docs.DeleteDocument, uow.provider, access)
    watch_document = providers.Factory(docs.WatchDocument, get_document)
    ingest_documents = providers.Factory(IngestDocuments, uow.provider, embedders, pdf_reader, clock, knowledge)
    give_up_ingestion = providers.Factory(GiveUpIngestion, uow.provider, clock)
    requeue_stuck_documents = providers.Factory(RequeueStuckDocuments, uow.provider, clock)
    search = providers.Factory(Search, uow.provider, embedders, knowledge)  # for callers already authorised
    search_workspace = providers.Factory(SearchWorkspace, search, access)
    sync_embedding_space = providers.Factory(SyncEmbeddingSpace, uow.provider, embedders, clock)
    reembed = providers.Factory(Reembed, uow.provider, embedders, clock)
    # knowledge graph
    search_entities = providers.Factory(SearchEntities, uow.provider, access)
    explore_entity = providers.Factory(ExploreEntity, uow.provider, knowledge, access)
    find_path = providers.Factory(FindPath, uow.provider, knowledge, access)
    recent_entities = providers.Factory(RecentEntities, uow.provider, clock, access)

    # calling models: every domain's model calls go through one service
    calling = providers.Singleton(call_settings, settings)
    chat_models = providers.Singleton(chat_models, settings)
    prompts = providers.Singleton(FilePromptLibrary)
    token_counter = providers.Singleton(TiktokenCounter)
    breakers = providers.Singleton(Breakers, calling)
    model_calls = providers.Singleton(ModelCalls, chat_models, breakers, calling, clock)
    # knowledge graph extraction (after the model calls: extraction by a model goes through them)
    offline_extractor = providers.Singleton(OfflineExtractor, settings.provided.graph_max_entities_per_chunk)
    llm_extraction = providers.Singleton(llm_extraction, settings, uow.provider, model_calls, entitlements,
                                         token_counter, prompts, offline_extractor)
    build_document_graph = providers.Factory(BuildDocumentGraph, uow.provider, offline_extractor, embedders, clock,
                                             knowledge, llm_extraction)

    # conversation
    chat = providers.Singleton(chat_settings, settings)
    live_answers = providers.Singleton(LiveAnswers, settings.provided.chat_resume_grace_seconds)
    retriever = providers.Factory(KnowledgeRetriever, search,
                                  providers.Callable(SearchMode, settings.provided.chat_retrieval_mode))
    send_message = providers.Factory(SendMessage, uow.provider, read_uow.provider, entitlements, retriever, model_calls,
                                     prompts, token_counter, live_answers, clock, chat, access)
    save_answer_progress = providers.Factory(SaveAnswerProgress, uow.provider, live_answers, clock)
    stop_answer = providers.Factory(StopAnswer, uow.provider, live_answers, clock, access)
    recover_stalled_answers = providers.Factory(RecoverStalledAnswers, uow.provider, chat_models, token_counter, clock,
                                                chat)
    follow_message = providers.Factory(FollowMessage, read_uow.provider, live_answers, recover_stalled_answers, clock,
                                       chat, access)
    create_conversation = providers.Factory(convs.CreateConversation, uow.provider, clock, access)
    list_conversations = providers.Factory(convs.ListConversations, uow.provider, clock, access)
    get_conversation = providers.Factory(convs.GetConversation, uow.provider, clock, access)
    get_message = providers.Factory(convs.GetMessage, uow.provider, clock, access)
    rename_conversation = providers.Factory(convs.RenameConversation, uow.provider, clock, access)
    delete_conversation = providers.Factory(convs.DeleteConversation, uow.provider, clock, access)
    usage_report = providers.Factory(convs.UsageReport, uow.provider, clock, access)
    suggest_title = providers.Factory(convs.SuggestTitle, uow.provider, entitlements, model_calls, prompts, clock,
                                      access)

    # billing: Stripe, webhooks, reconciliation, views
    payments = providers.Singleton(payment_provider, settings)
    handle_stripe_event = providers.Factory(HandleStripeEvent, uow.provider, catalogue, clock, billing)
    start_checkout = providers.Factory(checkout.StartCheckout, uow.provider, payments, catalogue, clock,
                                       settings.provided.billing_return_url, access)
    open_billing_portal = providers.Factory(checkout.OpenPortal, uow.provider, payments, clock,
                                            settings.provided.billing_return_url, access)
    reconcile_billing = providers.Factory(Reconcile, uow.provider, payments, catalogue, clock, billing)
    request_reconciliation = providers.Factory(RequestReconciliation, uow.provider, access)
    billing_overview = providers.Factory(views.GetBillingOverview, uow.provider, catalogue, clock, access)
    view_entitlement = providers.Factory(views.ViewEntitlement, entitlements, access)
    list_webhook_events = providers.Factory(views.ListWebhookEvents, uow.provider, access)
    list_billing_repairs = providers.Factory(views.ListRepairs, uow.provider, access)


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)


async def shutdown(container: Container) -> None:
    """Release pooled connections; called when the app or a worker stops."""
    await container.chat_models().aclose()
    container.hasher().close()
    await container.engine().dispose()
