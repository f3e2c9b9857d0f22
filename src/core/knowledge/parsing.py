"""Text formats to blocks for the chunker: plain text and Markdown (headings + paragraphs) and HTML
(h1-h6 headings; paragraphs from block elements; scripts, styles and page chrome dropped)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from src.core.knowledge.chunking import Block, markdown_blocks
from src.ports.shared import InvalidInput

_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = {"p", "li", "td", "th", "pre", "blockquote", "div", "section", "article", "dd", "dt", "figcaption",
           "br", "tr", "table", "ul", "ol", "main", "body"}
_SKIPPED = {"script", "style", "noscript", "template", "head", "nav", "footer", "svg", "iframe"}
_SPACE = re.compile(r"\s+")


class _HtmlBlocks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._text: list[str] = []
        self._heading = 0
        self._skipping = 0

    def _flush(self) -> None:
        text = _SPACE.sub(" ", "".join(self._text)).strip()
        if text:
            self.blocks.append(Block(text, self._heading))
        self._text = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag in _BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _HEADINGS:
            self._flush()
            self._heading = 0
        elif tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._text.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def html_blocks(html: str) -> list[Block]:
    parser = _HtmlBlocks()
    parser.feed(html)
    parser.close()
    return parser.blocks


PARSERS = {"text/plain": markdown_blocks, "text/markdown": markdown_blocks, "text/html": html_blocks}


def blocks_of(content_type: str, text: str) -> list[Block]:
    parse = PARSERS.get(content_type.split(";")[0].strip().lower())
    if parse is None:
        raise InvalidInput(f"unsupported content type {content_type!r}; use one of {', '.join(PARSERS)}",
                           field="contentType")
    return parse(text)
