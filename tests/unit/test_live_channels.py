"""The live feed's payloads: any text fits Postgres's 8000-byte notifications and comes back whole."""

from __future__ import annotations

from src.adapters.live.channels import event_of, payloads
from src.ports.live import FeedEnd, FeedText


def test_long_text_is_split_into_notifications_that_fit_and_rejoin_exactly():
    text = ('"quoted"\n\t\\ 🧊 fjörd \x01 ' * 2000)  # escapes and 4-byte characters: more bytes than characters
    sent = payloads(FeedText(17, text))
    assert len(sent) > 1 and all(len(payload.encode()) < 8000 for payload in sent)
    pieces = [event_of(payload) for payload in sent]
    assert all(isinstance(piece, FeedText) for piece in pieces)
    offset = 17
    for piece in pieces:
        assert piece.offset == offset
        offset += len(piece.text)
    assert "".join(piece.text for piece in pieces) == text


def test_the_end_is_one_payload():
    assert [event_of(payload) for payload in payloads(FeedEnd())] == [FeedEnd()]
