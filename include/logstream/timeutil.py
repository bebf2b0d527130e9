"""Instants as the project writes and reads them: aware UTC datetimes, epoch milliseconds, and
ISO-8601 text with a ``Z``. One definition each, so that the CLIs, the stream, the generator and
the reports agree (a naive datetime is UTC here)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def from_spark(moment: datetime) -> datetime:
    """A timestamp PySpark collected, as an aware UTC datetime. PySpark hands timestamps back as
    naive datetimes in the process's local time zone, so here a naive value is LOCAL time (where
    :func:`as_utc` takes it as UTC)."""
    return moment.astimezone(UTC)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of ``moment`` (floored; a naive datetime is UTC)."""
    return (as_utc(moment) - EPOCH) // _MILLISECOND


def from_ms(ms: int) -> datetime:
    """Epoch milliseconds as an exact aware UTC datetime (no float rounding)."""
    return EPOCH + timedelta(milliseconds=ms)


def iso_z(moment: datetime | None) -> str | None:
    """ISO-8601 text in UTC with a ``Z`` (``2026-11-25T10:00:00Z``); None stays None."""
    return None if moment is None else as_utc(moment).isoformat().replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime | None:
    """ISO-8601 text (a ``Z`` allowed) as a datetime; empty text is None."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def utc_argument(text: str) -> datetime:
    """An ``argparse`` type: ISO-8601 text as an aware UTC datetime (no offset: UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time such as 2024-01-15T12:00:00Z"
        ) from None
    return as_utc(moment)


_INTERVAL_UNITS_MS = {
    "millisecond": 1,
    "ms": 1,
    "second": 1_000,
    "sec": 1_000,
    "s": 1_000,
    "minute": 60_000,
    "min": 60_000,
    "m": 60_000,
    "hour": 3_600_000,
    "h": 3_600_000,
    "day": 86_400_000,
    "d": 86_400_000,
}


def interval_ms(text: str) -> int:
    """'5 minutes' -> 300000. Units: ms, second(s), minute(s), hour(s), day(s)."""
    amount, _, unit = text.strip().partition(" ")
    unit = unit.strip().lower()
    unit = unit[:-1] if unit.endswith("s") and unit[:-1] in _INTERVAL_UNITS_MS else unit
    if unit not in _INTERVAL_UNITS_MS or not amount.replace(".", "", 1).isdigit():
        raise ValueError(f"cannot read the interval {text!r}; write e.g. '5 minutes'")
    return int(float(amount) * _INTERVAL_UNITS_MS[unit])
