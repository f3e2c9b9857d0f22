"""The structure-aware chunker: sizes, overlap, heading paths, nothing lost."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from src.core.knowledge.chunking import Block, StructuredChunker, markdown_blocks
from src.ports.shared import InvalidInput

DOC = """# Guide
Intro paragraph. It has two sentences.

## Install
Run the installer. Then restart.

## Use
### Search
Search finds passages.

# Appendix
Last words.
"""


def _sentences(n: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa"]
    return " ".join(f"Sentence {i} " + " ".join(rng.choice(words) for _ in range(rng.randint(4, 20))) + "."
                    for i in range(n))


def test_markdown_becomes_headings_and_paragraphs():
    blocks = markdown_blocks(DOC)
    assert blocks[0] == Block("Guide", 1)
    assert Block("Search", 3) in blocks and Block("Search finds passages.") in blocks


def test_chunks_carry_their_heading_path_and_never_straddle_a_heading():
    chunks = StructuredChunker(max_chars=200, overlap_chars=20).chunk(markdown_blocks(DOC))
    assert [(c.position, c.heading_path, c.text) for c in chunks] == [
        (0, ("Guide",), "Intro paragraph. It has two sentences."),
        (1, ("Guide", "Install"), "Run the installer. Then restart."),
        (2, ("Guide", "Use", "Search"), "Search finds passages."),
        (3, ("Appendix",), "Last words."),
    ]


def test_long_text_is_split_at_sentences_within_the_size_with_overlap():
    text = _sentences(80)
    chunker = StructuredChunker(max_chars=400, overlap_chars=120)
    chunks = chunker.chunk([Block(text)])
    assert len(chunks) > 5 and all(len(c.text) <= 400 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)  # whole sentences
    for before, after in zip(chunks, chunks[1:], strict=False):
        last_sentence = re.findall(r"Sentence \d+[^.]*\.", before.text)[-1]
        if len(last_sentence) < 120:  # it fits the overlap, so the next chunk opens by repeating it
            assert 0 <= after.text.find(last_sentence) < 120
    numbers = sorted({int(n) for c in chunks for n in re.findall(r"Sentence (\d+)", c.text)})
    assert numbers == list(range(80))  # nothing lost


def test_a_giant_word_is_cut_to_size():
    chunks = StructuredChunker(max_chars=100, overlap_chars=0).chunk([Block("x" * 350 + " tail")])
    assert [len(c.text) for c in chunks] == [100, 100, 100, 50 + 5]


def test_empty_input_gives_no_chunks():
    assert StructuredChunker().chunk(markdown_blocks("\n\n   \n")) == []


@pytest.mark.parametrize(("size", "overlap"), [(50, 0), (1000, 600), (1000, -1)])
def test_bad_sizes_are_refused(size, overlap):
    with pytest.raises(InvalidInput):
        StructuredChunker(max_chars=size, overlap_chars=overlap)


@settings(max_examples=60, deadline=None)
@given(paragraphs=st.lists(st.text(alphabet=st.sampled_from("abc .!\n"), max_size=900), max_size=8),
       size=st.integers(100, 600))
def test_any_text_fits_the_size_and_keeps_every_word(paragraphs, size):
    chunker = StructuredChunker(max_chars=size, overlap_chars=size // 4)
    chunks = chunker.chunk([Block(p) for p in paragraphs])
    assert all(len(c.text) <= size for c in chunks)
    original = [w for p in paragraphs for w in p.split()]
    seen = " ".join(c.text for c in chunks).split()
    assert set(original) <= set(seen)
    assert [c.position for c in chunks] == list(range(len(chunks)))
