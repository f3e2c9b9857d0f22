"""The default EmailSender: mail goes to the `email_outbox` table (and the log) for a relay to deliver."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import async_sessionmaker

from src.adapters.postgres.identity.tables import OutboxEmailRow
from src.ports.identity import Email

log = logging.getLogger(__name__)


class OutboxEmailSender:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def send(self, email: Email) -> None:
        async with self._sessions() as session, session.begin():
            session.add(OutboxEmailRow(id=uuid.uuid4(), recipient=email.to, subject=email.subject, body=email.body))
        log.info("mail to %s queued in the outbox: %s", email.to, email.subject)
