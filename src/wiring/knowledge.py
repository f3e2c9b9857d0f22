"""Knowledge wiring: parsing, embeddings, the keyword index, ingestion, search, and the knowledge graph
(extraction by a model goes through the model-call service)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from dependency_injector import providers

from src.adapters.documents.pdf import PypdfReader
from src.adapters.embeddings.registry import EmbedderRegistry, EmbeddingOptions
from src.adapters.extraction.offline import OfflineExtractor
from src.adapters.llm.prompts import FilePromptLibrary
from src.adapters.llm.tokens import TiktokenCounter
from src.adapters.postgres.knowledge.keyword_index import PgKeywordIndex
from src.adapters.postgres.knowledge.search import PgSearchSettings
from src.adapters.postgres.knowledge.unit_of_work import PgKnowledgeUnitOfWork
from src.config import Settings
from src.core.knowledge import documents as docs
from src.core.knowledge.config import KnowledgeConfig
from src.core.knowledge.embeddings import EmbedTexts
from src.core.knowledge.extraction import LlmExtraction
from src.core.knowledge.graph import BuildDocumentGraph
from src.core.knowledge.graph_queries import ExploreEntity, FindPath, RecentEntities, SearchEntities
from src.core.knowledge.ingestion import CheckKeywordIndex, GiveUpIngestion, IngestDocuments, RequeueStuckDocuments
from src.core.knowledge.search import Search, SearchWorkspace
from src.core.knowledge.spaces import Reembed, SyncEmbeddingSpace
from src.core.llm.calls import ModelCalls
from src.ports.billing import EntitlementChecker
from src.ports.graph import EntityExtractor
from src.ports.knowledge import KnowledgeUnitOfWork
from src.wiring.llm import LlmWiring

log = logging.getLogger(__name__)
GRAPH_PROMPT = "graph_extraction"
W = LlmWiring


def knowledge_config(settings: Settings) -> KnowledgeConfig:
    return KnowledgeConfig(max_document_bytes=settings.max_document_bytes, chunk_chars=settings.chunk_chars,
                           chunk_overlap_chars=settings.chunk_overlap_chars,
                           embed_batch_size=settings.embedding_step_chunks,
                           fusion=settings.search_fusion, keyword_weight=settings.search_keyword_weight,
                           graph=settings.graph_build, graph_seeds=settings.graph_seeds, graph_hops=settings.graph_hops,
                           graph_fan_out=settings.graph_fan_out, graph_weight=settings.graph_weight,
                           graph_hub_mentions=settings.graph_hub_mentions,
                           graph_merge_similarity=settings.graph_merge_similarity)


def embedding_options(settings: Settings) -> EmbeddingOptions:
    return EmbeddingOptions(model=settings.embedding_model, batch_size=settings.embedding_batch_size,
                            threads=settings.embedding_threads, max_seq_length=settings.embedding_max_seq_length,
                            openai_api_key=settings.openai_api_key, openai_base_url=settings.openai_base_url,
                            openai_dimensions=settings.embedding_dimensions,
                            query_cache=settings.embedding_query_cache, backend=settings.embedding_backend,
                            cache=settings.home / "cache" / "onnx")


def llm_extraction(settings: Settings, uow: Callable[[], KnowledgeUnitOfWork], calls: ModelCalls,
                   entitlements: EntitlementChecker, counter: TiktokenCounter, prompts: FilePromptLibrary,
                   offline: EntityExtractor) -> LlmExtraction | None:
    """Extraction by a model when KEEL_GRAPH_EXTRACTOR=llm and the model's provider is configured."""
    if settings.graph_extractor != "llm":
        return None
    if not calls.routes((settings.graph_extractor_model,)) or settings.graph_extractor_model == "offline":
        log.warning("KEEL_GRAPH_EXTRACTOR=llm but %s has no configured provider: extracting offline",
                    settings.graph_extractor_model)
        return None
    return LlmExtraction(uow, calls, entitlements, counter, settings.graph_extractor_model,
                         prompts.get(GRAPH_PROMPT), offline)


class KnowledgeWiring(LlmWiring):
    search_settings = providers.Singleton(PgSearchSettings, ef_search=W.settings.provided.hnsw_ef_search)
    knowledge_uow = providers.Factory(PgKnowledgeUnitOfWork, W.session_factory, W.jobs, search_settings,
                            W.settings.provided.graph_store)
    knowledge_reads = providers.Factory(PgKnowledgeUnitOfWork, W.read_session_factory, W.jobs, search_settings,
                                        W.settings.provided.graph_store)
    knowledge = providers.Singleton(knowledge_config, W.settings)
    embedders = providers.Singleton(EmbedderRegistry, providers.Singleton(embedding_options, W.settings))
    pdf_reader = providers.Singleton(PypdfReader)
    check_keyword_index = providers.Factory(CheckKeywordIndex, providers.Singleton(PgKeywordIndex, W.engine))
    upload_documents = providers.Factory(docs.UploadDocuments, knowledge_uow.provider, W.clock, knowledge,
                                         W.entitlements, W.access)
    get_document = providers.Factory(docs.GetDocument, knowledge_uow.provider, W.access)
    list_documents = providers.Factory(docs.ListDocuments, knowledge_uow.provider, W.access)
    delete_document = providers.Factory(docs.DeleteDocument, knowledge_uow.provider, W.access)
    watch_document = providers.Factory(docs.WatchDocument, get_document)
    ingest_documents = providers.Factory(IngestDocuments, knowledge_uow.provider, embedders, pdf_reader, W.clock,
                                         knowledge, W.telemetry)
    give_up_ingestion = providers.Factory(GiveUpIngestion, knowledge_uow.provider, W.clock)
    requeue_stuck_documents = providers.Factory(RequeueStuckDocuments, knowledge_uow.provider, W.clock)
    # for callers already authorised
    search = providers.Factory(Search, knowledge_uow.provider, knowledge_reads.provider, embedders, knowledge,
                               W.telemetry)
    search_workspace = providers.Factory(SearchWorkspace, search, W.access)
    sync_embedding_space = providers.Factory(SyncEmbeddingSpace, knowledge_uow.provider, embedders, W.clock)
    embed_texts = providers.Factory(EmbedTexts, knowledge_uow.provider, embedders, W.token_counter, W.access)
    reembed = providers.Factory(Reembed, knowledge_uow.provider, embedders, W.clock, W.telemetry)
    # the knowledge graph
    search_entities = providers.Factory(SearchEntities, knowledge_uow.provider, W.access)
    explore_entity = providers.Factory(ExploreEntity, knowledge_uow.provider, knowledge, W.access)
    find_path = providers.Factory(FindPath, knowledge_uow.provider, knowledge, W.access)
    recent_entities = providers.Factory(RecentEntities, knowledge_uow.provider, W.clock, W.access)
    offline_extractor = providers.Singleton(OfflineExtractor, W.settings.provided.graph_max_entities_per_chunk)
    llm_extraction = providers.Singleton(llm_extraction, W.settings, knowledge_uow.provider, W.model_calls,
                                         W.entitlements, W.token_counter, W.prompts, offline_extractor)
    build_document_graph = providers.Factory(BuildDocumentGraph, knowledge_uow.provider, offline_extractor, embedders,
                                             W.clock, knowledge, llm_extraction)
