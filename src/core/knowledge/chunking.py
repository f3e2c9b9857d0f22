"""Structure-aware chunking: text splits at headings first, then paragraphs, then sentences, then words,
into chunks of at most `max_chars`, with up to `overlap_chars` of the previous chunk's closing sentences
repeated at the start of the next one in the same section. Chunks never straddle a heading, and each
keeps its position and heading path."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from src.ports.shared import InvalidInput

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[]?[A-Z0-9])")
_MARKDOWN_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True, slots=True)
class Block:
    """One unit of a parsed document: a heading (level 1-6) or a paragraph (level 0)."""

    text: str
    level: int = 0

    @property
    def is_heading(self) -> bool:
        return self.level > 0


@dataclass(frozen=True, slots=True)
class Chunk:
    position: int
    text: str
    heading_path: tuple[str, ...] = ()


def markdown_blocks(text: str) -> list[Block]:
    """Markdown (or plain text) to blocks: `#` headings, blank-line separated paragraphs."""
    blocks: list[Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block(" ".join(line.strip() for line in paragraph)))
            paragraph.clear()

    for line in text.splitlines():
        heading = _MARKDOWN_HEADING.match(line)
        if heading:
            flush()
            blocks.append(Block(heading.group(2), level=len(heading.group(1))))
        elif line.strip():
            paragraph.append(line)
        else:
            flush()
    flush()
    return blocks


class StructuredChunker:
    def __init__(self, max_chars: int = 1000, overlap_chars: int = 150) -> None:
        if max_chars < 100:
            raise InvalidInput("chunks need at least 100 characters", field="max_chars")
        if not 0 <= overlap_chars < max_chars // 2:
            raise InvalidInput("overlap must be below half the chunk size", field="overlap_chars")
        self.max_chars = max_chars
        self.overlap_chars = overlap_chars

    def chunk(self, blocks: Iterable[Block]) -> list[Chunk]:
        chunks: list[Chunk] = []
        path: list[tuple[int, str]] = []
        section: list[str] = []

        def close_section() -> None:
            heading_path = tuple(title for _, title in path)
            for text in self._pack(section):
                chunks.append(Chunk(len(chunks), text, heading_path))
            section.clear()

        for block in blocks:
            if block.is_heading:
                close_section()
                path[:] = [(level, title) for level, title in path if level < block.level]
                path.append((block.level, block.text.strip()))
            elif block.text.strip():
                section.append(block.text.strip())
        close_section()
        return chunks

    def _pack(self, paragraphs: list[str]) -> list[str]:
        """Greedy packing of sentence-sized pieces; paragraph breaks are kept inside a chunk."""
        pieces: list[tuple[str, bool]] = []  # (piece, starts a paragraph)
        for paragraph in paragraphs:
            for index, piece in enumerate(self._pieces(paragraph)):
                pieces.append((piece, index == 0))
        packed: list[str] = []
        current: list[tuple[str, bool]] = []
        for piece, new_paragraph in pieces:
            if current and _length(current + [(piece, new_paragraph)]) > self.max_chars:
                packed.append(_join(current))
                current = self._overlap(current, budget=self.max_chars - len(piece) - 2)
            current.append((piece, new_paragraph))
        if current:
            packed.append(_join(current))
        return packed

    def _overlap(self, previous: list[tuple[str, bool]], budget: int) -> list[tuple[str, bool]]:
        carried: list[tuple[str, bool]] = []
        room = min(self.overlap_chars, budget)
        for piece, _ in reversed(previous):
            if len(piece) + 1 + sum(len(p) + 1 for p, _ in carried) > room:
                break
            carried.insert(0, (piece, False))
        return carried

    def _pieces(self, paragraph: str) -> list[str]:
        """A paragraph as pieces no longer than max_chars: whole if it fits, else sentences, else words."""
        if len(paragraph) <= self.max_chars:
            return [paragraph]
        pieces: list[str] = []
        for sentence in _SENTENCE_END.split(paragraph):
            if len(sentence) <= self.max_chars:
                pieces.append(sentence)
            else:
                pieces.extend(self._words(sentence))
        return pieces

    def _words(self, sentence: str) -> list[str]:
        pieces, current = [], ""
        for word in sentence.split():
            while len(word) > self.max_chars:  # a "word" longer than a chunk (a URL, a base64 blob)
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(word[: self.max_chars])
                word = word[self.max_chars:]
            candidate = f"{current} {word}" if current else word
            if len(candidate) > self.max_chars:
                pieces.append(current)
                candidate = word
            current = candidate
        if current:
            pieces.append(current)
        return pieces


def _join(pieces: list[tuple[str, bool]]) -> str:
    text = ""
    for piece, new_paragraph in pieces:
        text += ("\n\n" if new_paragraph else " ") + piece if text else piece
    return text


def _length(pieces: list[tuple[str, bool]]) -> int:
    return len(_join(pieces))
