"""Pure rules of the knowledge graph: entity keys, resolution of mentions into entities, the offline
extractor."""

from __future__ import annotations

import uuid

from src.adapters.extraction.offline import OfflineExtractor
from src.core.knowledge.graph import all_keys, entity_key, resolve
from src.ports.graph import CO_OCCURS, ChunkExtraction, ChunkText, Entity, EntityMention, RelationMention

WORKSPACE, DOCUMENT = uuid.uuid4(), uuid.uuid4()
CHUNK_A, CHUNK_B = uuid.uuid4(), uuid.uuid4()


def test_case_punctuation_and_a_plural_s_make_the_same_key():
    assert entity_key("T-Cells") == entity_key("t cell") == "t cell"
    assert entity_key("  Glaciers ") == "glacier"
    assert entity_key("Stress") == "stress" and entity_key("virus") == "virus" and entity_key("GPS") == "gps"
    assert entity_key("$$ '") == ""


def test_mentions_merge_by_key_and_alias_and_meet_existing_entities():
    extractions = [
        ChunkExtraction(CHUNK_A, (EntityMention("Tumor necrosis factor", "term", ("TNF",)),
                                  EntityMention("insulin resistance", "term")),
                        (RelationMention("TNF", "increases", "Insulin Resistance"),)),
        ChunkExtraction(CHUNK_B, (EntityMention("TNF", "acronym"), EntityMention("Glucose uptake", "term"),
                                  EntityMention("tnf", "acronym")),
                        (RelationMention("tnf", "inhibits", "glucose uptake"),
                         RelationMention("TNF", CO_OCCURS, "Tumor necrosis factor"))),  # itself: dropped
    ]
    known = Entity(uuid.uuid4(), WORKSPACE, "glucose uptake", "glucose uptake", "term", ("GU",))
    assert set(all_keys(extractions)) == {"tumor necrosis factor", "tnf", "insulin resistance", "glucose uptake"}
    graph = resolve(WORKSPACE, extractions, {"glucose uptake": known}, DOCUMENT, [CHUNK_A, CHUNK_B])
    by_name = {entity.name: entity for entity in graph.entities}
    assert set(by_name) == {"Tumor necrosis factor", "insulin resistance", "glucose uptake"}  # first seen
    tnf = by_name["Tumor necrosis factor"]
    assert set(tnf.aliases) == {"TNF", "tnf"}
    assert by_name["glucose uptake"].id == known.id and by_name["glucose uptake"].aliases == ("GU", "Glucose uptake")
    assert {(c, e) for c, e in graph.mentions} == {(CHUNK_A, tnf.id), (CHUNK_A, by_name["insulin resistance"].id),
                                                   (CHUNK_B, tnf.id), (CHUNK_B, known.id)}
    assert {(r.subject_id, r.predicate, r.object_id, r.chunk_id) for r in graph.relations} == {
        (tnf.id, "increases", by_name["insulin resistance"].id, CHUNK_A),
        (tnf.id, "inhibits", known.id, CHUNK_B)}
    assert ("tumor necrosis factor", tnf.id) in graph.keys and ("tnf", tnf.id) in graph.keys


def test_two_groups_that_meet_in_one_existing_entity_become_that_entity():
    known = Entity(uuid.uuid4(), WORKSPACE, "tumor necrosis factor", "Tumor necrosis factor", "term", ("TNF",))
    extractions = [ChunkExtraction(CHUNK_A, (EntityMention("TNF", "acronym"),
                                             EntityMention("tumor necrosis factors", "term")))]
    existing = {"tumor necrosis factor": known, "tnf": known}
    graph = resolve(WORKSPACE, extractions, existing, DOCUMENT, [CHUNK_A])
    assert [entity.id for entity in graph.entities] == [known.id]
    assert graph.mentions == ((CHUNK_A, known.id),)


def test_the_offline_extractor_finds_phrases_abbreviations_and_named_relations():
    extractor = OfflineExtractor(max_entities_per_chunk=5)
    text = ("Tumor necrosis factor (TNF) increases insulin resistance in adipose tissue. "
            "However, the results of this study were also reported. TNF inhibits glucose uptake.")
    found = extractor.extract_one(ChunkText(CHUNK_A, text))
    names = [entity.name for entity in found.entities]
    assert names[0] == "Tumor necrosis factor" and found.entities[0].aliases == ("TNF",)
    assert {"insulin resistance", "adipose tissue", "glucose uptake"} <= set(names)
    assert not {"results", "study", "However", "TNF"} & set(names) and len(names) <= 5
    assert RelationMention("Tumor necrosis factor", "increases", "insulin resistance") in found.relations
    assert RelationMention("Tumor necrosis factor", "inhibits", "glucose uptake") in found.relations
    assert RelationMention("insulin resistance", CO_OCCURS, "adipose tissue") in found.relations
    assert extractor.extract_one(ChunkText(CHUNK_B, "and of the 1999 2.5")).entities == ()
