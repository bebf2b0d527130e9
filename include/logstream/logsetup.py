"""Structured, quiet-by-default logging: one ``key=value`` line per event on stderr."""

from __future__ import annotations

import logging
import os

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... msg="..." key=value`` with the record's ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        line = " ".join(f"{key}={_quote(value)}" for key, value in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(ch.isspace() or ch in '"=' for ch in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def configure(level: str | None = None) -> None:
    """Configure the ``logstream`` logger once; level from the argument or LOGSTREAM_LOG_LEVEL."""
    logger = logging.getLogger("logstream")
    logger.setLevel((level or os.environ.get("LOGSTREAM_LOG_LEVEL", "WARNING")).upper())
    if not any(getattr(h, "_logstream", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(KeyValueFormatter())
        handler._logstream = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
