"""Supported document formats and the way from stored bytes to blocks for the chunker."""

from __future__ import annotations

from src.core.knowledge.chunking import Block
from src.core.knowledge.parsing import PARSERS, blocks_of
from src.ports.knowledge import PdfReader, UnreadableDocument

PDF = "application/pdf"
SUPPORTED_TYPES = (*PARSERS, PDF)
_BY_EXTENSION = {"txt": "text/plain", "md": "text/markdown", "markdown": "text/markdown", "html": "text/html",
                 "htm": "text/html", "pdf": PDF}


def normalise_content_type(content_type: str | None, filename: str | None = None) -> str:
    """The declared type without parameters; a missing or generic one is guessed from the file name."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared in SUPPORTED_TYPES or not filename:
        return declared
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return _BY_EXTENSION.get(extension, declared)


def read_blocks(content_type: str, data: bytes, pdf: PdfReader) -> list[Block]:
    if content_type == PDF:
        return [block for page in pdf.pages(data) for block in blocks_of("text/plain", page)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(f"the {content_type} file is not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise UnreadableDocument(f"the {content_type} file contains NUL bytes; is it a binary file?")
    return blocks_of(content_type, text)
