"""PDF text by pypdf: page by page, in reading order as pypdf extracts it."""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader as _Pdf
from pypdf.errors import PdfReadError, PyPdfError

from src.ports.knowledge import UnreadableDocument

MAX_PAGES = 2000


class PypdfReader:
    def pages(self, data: bytes) -> list[str]:
        logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns loudly about harmless quirks
        try:
            pdf = _Pdf(io.BytesIO(data))
            if pdf.is_encrypted:
                raise UnreadableDocument("the PDF is encrypted; upload an unprotected copy")
            if len(pdf.pages) > MAX_PAGES:
                raise UnreadableDocument(f"the PDF has more than {MAX_PAGES} pages")
            return [page.extract_text() or "" for page in pdf.pages]
        except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as exc:
            raise UnreadableDocument(f"the PDF could not be read: {exc}") from None
