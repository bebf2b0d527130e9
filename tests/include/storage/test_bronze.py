"""Which bronze partitions a span of event times needs (hand-computed)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from logstream.storage.bronze import bronze_partitions

D = date(2026, 11, 25)
MIDNIGHT = datetime(2026, 11, 25, tzinfo=UTC)
NEXT = MIDNIGHT + timedelta(days=1)


def at(hours: int = 0, minutes: int = 0, base: datetime = MIDNIGHT) -> datetime:
    return base + timedelta(hours=hours, minutes=minutes)


def test_bronze_partitions_read_whole_days_and_only_the_needed_hours():
    assert bronze_partitions((MIDNIGHT, NEXT)) == [(D, None)]
    assert bronze_partitions((MIDNIGHT, at(minutes=3, base=NEXT))) == [
        (D, None),
        (date(2026, 11, 26), 0),
    ]
    assert bronze_partitions((at(11, 30), at(13))) == [(D, 11), (D, 12)]
    assert bronze_partitions((at(22), at(1, 30, base=NEXT))) == [
        (D, 22),
        (D, 23),
        (date(2026, 11, 26), 0),
        (date(2026, 11, 26), 1),
    ]
