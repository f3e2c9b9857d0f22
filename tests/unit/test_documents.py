"""Upload input handling: JSON batches, metadata, content types."""

from __future__ import annotations

import json

import pytest

from src.core.knowledge.documents import batch_from_json, check_metadata
from src.core.knowledge.formats import normalise_content_type, read_blocks
from src.ports.knowledge import UnreadableDocument
from src.ports.shared import InvalidInput


def test_a_json_lines_batch_and_a_json_array_give_the_same_uploads():
    items = [{"title": "One", "text": "first", "metadata": {"a": 1}},
             {"text": "second", "contentType": "text/markdown", "source": "s"}]
    lines = batch_from_json("\n".join(json.dumps(item) for item in items).encode())
    array = batch_from_json(json.dumps(items).encode())
    assert lines == array
    assert [(u.title, u.data, u.content_type, u.source, u.metadata) for u in lines] == [
        ("One", b"first", "text/plain", None, {"a": 1}), ("Document 2", b"second", "text/markdown", "s", {})]


@pytest.mark.parametrize("raw", [b"{not json", b'{"title": "no text"}', b"[1, 2]", b"\xff\xfe"])
def test_a_broken_batch_is_rejected_whole(raw):
    with pytest.raises(InvalidInput) as error:
        batch_from_json(raw)
    assert error.value.field == "file"


def test_metadata_must_be_a_small_object():
    assert check_metadata(None) == {}
    with pytest.raises(InvalidInput):
        check_metadata([1, 2])
    with pytest.raises(InvalidInput):
        check_metadata({"big": "x" * 20_000})


@pytest.mark.parametrize(("declared", "filename", "expected"), [
    ("text/markdown; charset=utf-8", None, "text/markdown"),
    ("application/octet-stream", "paper.PDF", "application/pdf"),
    (None, "notes.md", "text/markdown"),
    ("image/png", "x.png", "image/png"),
])
def test_content_types_are_normalised_or_guessed_from_the_name(declared, filename, expected):
    assert normalise_content_type(declared, filename) == expected


def test_text_that_is_not_utf8_or_is_binary_is_unreadable():
    with pytest.raises(UnreadableDocument, match="not UTF-8"):
        read_blocks("text/plain", "caf\xe9".encode("latin-1"), pdf=None)
    with pytest.raises(UnreadableDocument, match="NUL"):
        read_blocks("text/plain", b"abc\x00def", pdf=None)
