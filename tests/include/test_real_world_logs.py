"""Real-world log files (tests/data/real_world, sources and licenses in its README) parse with the
right fields under ``auto`` and no other setting.

Expected values were written by hand from each line or taken from the upstream project's expected
output (Filebeat's ``-expected.json``), never from this parser. Every line of every file is one
record, parsed as ``logstream parse`` reads an archive: no Kafka timestamp, so event times are not
judged against the wall clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from logstream import schemas
from logstream.cli.parse import split_lines
from logstream.transforms.parsing import ParseOptions, parse_log_records

CORPUS = Path(__file__).resolve().parents[1] / "data" / "real_world"
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text())
FILES = [entry["file"] for entry in MANIFEST]


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def parsed(spark: SparkSession) -> dict[str, list[dict[str, Any]]]:
    """file -> one row per line, in order (event_time as an aware datetime)."""
    rows = []
    for name in FILES:
        lines = split_lines((CORPUS / name).read_bytes())
        rows += [(None, line, name, 0, offset, None) for offset, line in enumerate(lines)]
    records = spark.createDataFrame(rows, schemas.KAFKA_RECORD)
    out = (
        records.transform(parse_log_records(ParseOptions()))
        .withColumn("event_time", F.date_format("event_time", "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"))
        .orderBy("kafka_topic", "kafka_offset")
        .collect()
    )
    by_file: dict[str, list[dict[str, Any]]] = {name: [] for name in FILES}
    for row in out:
        by_file[row["kafka_topic"]].append(row.asDict(recursive=True))
    return by_file


def _mismatches(row: dict[str, Any], expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    wrong = {}
    for name, value in expected.items():
        actual = row.get(name)
        if name == "event_time" and value is not None and actual is not None:
            same = _instant(actual) == _instant(value)
        elif isinstance(value, float) and isinstance(actual, float):
            same = abs(actual - value) <= 1e-9 * max(1.0, abs(value))
        else:
            same = actual == value
        if not same:
            wrong[name] = (actual, value)
    return wrong


@pytest.mark.parametrize("name", FILES)
def test_every_line_parses_with_the_expected_fields(parsed, name: str):
    expected_lines = [
        json.loads(line)
        for line in (CORPUS / name.replace(".log", ".expected.jsonl")).read_text().splitlines()
        if line.strip()
    ]
    rows = parsed[name]
    assert len(rows) == len(expected_lines), "one expected object per line"
    problems = {}
    for number, (row, expected) in enumerate(zip(rows, expected_lines, strict=True), start=1):
        wrong = _mismatches(row, expected)
        if "reason" not in expected and row["reason"] is not None:
            wrong["reason"] = (f"{row['reason']}: {row['detail']}", None)
        if wrong:
            problems[number] = wrong
    assert not problems, f"{name}: line -> {{column: (actual, expected)}}: {problems}"
