"""Formats to blocks: Markdown and HTML keep their headings; page chrome and scripts go."""

from __future__ import annotations

import pytest

from src.core.knowledge.chunking import Block, StructuredChunker
from src.core.knowledge.parsing import blocks_of
from src.ports.shared import InvalidInput

PAGE = """<!doctype html><html><head><title>T</title><style>p{color:red}</style></head><body>
<nav><a href="/">Home</a></nav>
<h1>Trial results</h1><p>Aspirin &amp; placebo were
compared.</p><script>track()</script>
<h2>Methods</h2><ul><li>Randomised.</li><li>Double <b>blind</b>.</li></ul>
<footer>© 2026</footer></body></html>"""


def test_html_keeps_headings_and_text_and_drops_chrome():
    assert blocks_of("text/html; charset=utf-8", PAGE) == [
        Block("Trial results", 1), Block("Aspirin & placebo were compared."),
        Block("Methods", 2), Block("Randomised."), Block("Double blind."),
    ]


def test_html_chunks_know_their_section():
    chunks = StructuredChunker(max_chars=200, overlap_chars=40).chunk(blocks_of("text/html", PAGE))
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Trial results",), "Aspirin & placebo were compared."),
        (("Trial results", "Methods"), "Randomised.\n\nDouble blind."),
    ]


def test_plain_text_is_paragraphs():
    assert blocks_of("text/plain", "one\ntwo\n\nthree") == [Block("one two"), Block("three")]


def test_an_unknown_type_names_the_field():
    with pytest.raises(InvalidInput) as error:
        blocks_of("application/x-msword", "…")
    assert error.value.field == "contentType"
