"""One definition of the project's instants (hand-worked values)."""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from logstream.timeutil import (
    as_utc,
    from_ms,
    from_spark,
    iso_z,
    parse_iso,
    to_ms,
    utc_argument,
)

T = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)  # 1705314600 s


def test_milliseconds_both_ways_exactly():
    assert to_ms(T) == 1_705_314_600_000
    assert to_ms(T.replace(tzinfo=None)) == 1_705_314_600_000  # naive is UTC
    assert from_ms(1_705_314_600_123) == T + timedelta(milliseconds=123)
    assert from_ms(-1) == datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
    assert to_ms(from_ms(-1)) == -1


def test_text_both_ways():
    plus_nine = timezone(timedelta(hours=9))
    assert iso_z(T.astimezone(plus_nine)) == "2024-01-15T10:30:00Z"
    assert iso_z(None) is None
    assert parse_iso("2024-01-15T10:30:00Z") == T
    assert parse_iso("") is None
    assert as_utc(datetime(2024, 1, 15, 19, 30, tzinfo=plus_nine)) == T


def test_command_line_times_are_utc():
    assert utc_argument("2024-01-15T19:30:00+09:00") == T
    assert utc_argument("2024-01-15T10:30:00") == T
    assert utc_argument("2024-01-15T10:30:00Z").tzinfo is UTC
    with pytest.raises(argparse.ArgumentTypeError, match="'noon' is not an ISO-8601 time"):
        utc_argument("noon")


def test_spark_timestamps_are_local_time():
    """PySpark collects naive local times: in a UTC+9 process, 19:00 naive is 10:00 UTC."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Seoul"
    time.tzset()
    try:
        ten_utc = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
        assert from_spark(datetime(2026, 11, 25, 19, 0)) == ten_utc
        assert from_spark(ten_utc) == ten_utc
    finally:
        if before is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = before
        time.tzset()
