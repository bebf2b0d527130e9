"""Helpers for the alert tests: a recording SMTP handler and the logs as production prints them."""

from __future__ import annotations

import pytest

from logstream.logsetup import KeyValueFormatter


class MailRecorder:
    """aiosmtpd handler: keeps every accepted envelope."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


def rendered_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record with its ``extra`` fields, as the production formatter prints it."""
    formatter = KeyValueFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)
