"""EntityExtractor with no model and no key: key phrases (RAKE-style: runs of content words between stop
words and punctuation, scored by word degree), acronyms and gene-like tokens, and abbreviations defined in
the text ("tumour necrosis factor (TNF)" makes TNF an alias). Relations link entities that follow each
other in a sentence: named by the verb between them when it is one of a known set, else `co_occurs_with`.
Fast (pure Python, CPU) and deterministic; an LLM extractor finds better types and predicates."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass

from src.ports.graph import CO_OCCURS, ChunkExtraction, ChunkText, EntityMention, RelationMention

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])|\n+")
_TOKEN = re.compile(r"[A-Za-z0-9\u0370-\u03ff][\w\u0370-\u03ff+\-/']*|[(),;:]")
_ACRONYM = re.compile(r"^(?=.*[A-Z])[A-Z0-9\u0370-\u03ff][A-Za-z0-9\u0370-\u03ff+\-/]{1,11}$")
STOP_WORDS = frozenset("""
a about above after again against all almost also although always among an and another any are as at be
because been before being below between both but by can could did do does doing done down during each either
enough especially etc even ever every few for from further had has have having here how however if in into is
it its itself just least less like made make many may might more most much must near neither no nor not now of
off often on once one only or other our out over own per perhaps rather same several shall she should show
showed shown shows since so some such than that the their them then there these they this those though through
thus to too toward towards under until up upon us use used uses using very via was we well were what when
where whether which while who whom whose why will with within without would yet you your study studies studied
result results method methods data analysis analyses conclusion conclusions background objective objectives
aim aims finding findings evidence effect effects role case cases report reported reports compared comparison
present presented total group groups number level levels significant significantly associated association high
higher low lower new important observed patient related respectively suggest suggests suggested including
include includes included based found known however therefore furthermore moreover addition additional
approximately whereas de novo vs versus
""".split())  # noqa: SIM905 (a word list reads better as text)
PREDICATES = {  # verb forms seen between two entities -> the predicate recorded
    **dict.fromkeys(("increases", "increased", "increase", "enhances", "enhanced", "elevates", "elevated",
                     "raises", "raised", "promotes", "promoted"), "increases"),
    **dict.fromkeys(("decreases", "decreased", "decrease", "reduces", "reduced", "reduce", "lowers", "lowered",
                     "suppresses", "suppressed"), "decreases"),
    **dict.fromkeys(("inhibits", "inhibited", "inhibit", "blocks", "blocked", "prevents", "prevented"),
                    "inhibits"),
    **dict.fromkeys(("activates", "activated", "activate", "induces", "induced", "induce", "stimulates",
                     "stimulated", "triggers", "triggered"), "activates"),
    **dict.fromkeys(("causes", "caused", "cause", "leads", "led", "drives", "driven", "drive", "produces",
                     "produced", "produce"), "causes"),
    **dict.fromkeys(("regulates", "regulated", "regulate", "modulates", "modulated", "controls",
                     "controlled"), "regulates"),
    **dict.fromkeys(("binds", "bound", "bind", "interacts", "interacted"), "binds"),
    **dict.fromkeys(("treats", "treated", "treat"), "treats"),
    **dict.fromkeys(("encodes", "encoded", "encode", "expresses", "expressed"), "expresses"),
    **dict.fromkeys(("requires", "required", "require"), "requires"),
    **dict.fromkeys(("contains", "contained", "includes"), "contains"),
    **dict.fromkeys(("improves", "improved", "improve", "protects", "protected", "restores", "restored"),
                    "improves"),
    **dict.fromkeys(("impairs", "impaired", "impair", "damages", "damaged", "worsens", "worsened"), "impairs"),
    **dict.fromkeys(("affects", "affected", "affect", "alters", "altered", "mediates", "mediated", "influences",
                     "influenced"), "affects"),
    **dict.fromkeys(("predicts", "predicted", "correlates", "correlated", "indicates", "indicated"), "predicts"),
}
MAX_PHRASE_WORDS = 4
MAX_CHUNK_CHARS = 20_000


@dataclass
class _Found:
    name: str
    type: str
    position: int  # token index of its first mention in the chunk
    score: float


def _phrases(tokens: list[str]) -> list[tuple[int, list[str]]]:
    """Runs of content words between stop words and punctuation, with their start index."""
    runs, current, start = [], [], 0
    for index, token in enumerate(tokens + [","]):
        if token in "(),;:" or token.lower() in STOP_WORDS or token.lower() in PREDICATES:
            if current:
                runs.append((start, current))
            current = []
        else:
            if not current:
                start = index
            current.append(token)
    return [(s, run[:MAX_PHRASE_WORDS]) for s, run in runs]


def _keep(words: list[str]) -> bool:
    if all(word.replace(".", "").replace("-", "").isdigit() for word in words):
        return False
    return len(words) > 1 or _ACRONYM.match(words[0]) is not None or len(words[0]) >= 5


def _kind(words: list[str], sentence_start: bool) -> str:
    if len(words) == 1 and _ACRONYM.match(words[0]):
        return "acronym"
    if all(word[:1].isupper() for word in words) and not (sentence_start and len(words) == 1):
        return "name"
    return "term"


class OfflineExtractor:
    name = "offline"

    def __init__(self, max_entities_per_chunk: int = 12) -> None:
        self._max = max_entities_per_chunk

    async def extract(self, chunks: list[ChunkText]) -> list[ChunkExtraction]:
        return await asyncio.to_thread(lambda: [self.extract_one(chunk) for chunk in chunks])

    def extract_one(self, chunk: ChunkText) -> ChunkExtraction:
        sentences = [_TOKEN.findall(s) for s in _SENTENCE.split(chunk.text[:MAX_CHUNK_CHARS]) if s.strip()]
        frequency, degree = Counter(), Counter()
        candidates: list[tuple[int, int, list[str], bool]] = []  # sentence, token index, words, at start
        aliases: dict[str, str] = {}
        for number, tokens in enumerate(sentences):
            for start, words in _phrases(tokens):
                if not _keep(words):
                    continue
                candidates.append((number, start, words, start == 0))
                for word in words:
                    frequency[word.lower()] += 1
                    degree[word.lower()] += len(words)
                end = start + len(words)
                if end + 2 < len(tokens) + 1 and tokens[end:end + 1] == ["("] and end + 2 <= len(tokens) - 1 \
                        and tokens[end + 2] == ")" and _ACRONYM.match(tokens[end + 1]) \
                        and tokens[end + 1][0].lower() == words[0][0].lower():
                    aliases[" ".join(words)] = tokens[end + 1]
        found: dict[str, _Found] = {}
        for number, start, words, at_start in candidates:
            name = " ".join(words)
            score = sum(degree[w.lower()] / frequency[w.lower()] for w in words)
            score += 3.0 if _ACRONYM.match(name) or name in aliases else 0.0
            known = found.get(name.lower())
            if known is None:
                found[name.lower()] = _Found(name, _kind(words, at_start), number * 1000 + start, score)
            else:
                known.score += 1.0
        alias_of = {acronym.lower(): long for long, acronym in aliases.items()}
        kept = sorted((f for key, f in found.items() if key not in alias_of),
                      key=lambda f: -f.score)[:self._max]
        entities = tuple(EntityMention(f.name, f.type, (aliases[f.name],) if f.name in aliases else ())
                         for f in sorted(kept, key=lambda f: f.position))
        return ChunkExtraction(chunk.chunk_id, entities, self._relations(sentences, entities, alias_of))

    def _relations(self, sentences: list[list[str]], entities: tuple[EntityMention, ...],
                   alias_of: dict[str, str]) -> tuple[RelationMention, ...]:
        names = {e.name.lower(): e.name for e in entities}
        names.update({alias: long for alias, long in alias_of.items() if long.lower() in names})
        relations = []
        for tokens in sentences:
            present: list[tuple[int, int, str]] = []  # start, end, entity name
            for start, words in _phrases(tokens):
                name = names.get(" ".join(words).lower())
                if name:
                    present.append((start, start + len(words), name))
            for (_, end, left), (start, _, right) in zip(present, present[1:], strict=False):
                if left == right:
                    continue
                between = [PREDICATES[t.lower()] for t in tokens[end:start] if t.lower() in PREDICATES]
                relations.append(RelationMention(left, between[0] if between else CO_OCCURS, right))
        return tuple(dict.fromkeys(relations))
