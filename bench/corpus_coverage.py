"""How much of the real-world corpus (tests/data/real_world) the parser reads right.

    .venv/bin/python bench/corpus_coverage.py

Parses every corpus file as ``logstream parse`` reads an archive (no Kafka timestamp, ``auto``)
and prints a Markdown table: per file, the lines whose every expected field is right and the
expected fields that are right. ``source_format`` is left out, so that an older build (run with
``PYTHONPATH=<its include/>``) is measured on the same fields. The test suite asserts all of it
(tests/include/test_real_world_logs.py); this script gives the figures.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "real_world"


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _right(row: dict, name: str, expected: object, rejected_expected: bool) -> bool:
    actual = row.get(name)
    if name == "reason":
        return actual == expected
    if not rejected_expected and row.get("reason") is not None:
        return False
    if name == "event_time" and actual and expected:
        return _instant(actual) == _instant(str(expected))
    if isinstance(expected, float) and isinstance(actual, float):
        return abs(actual - expected) <= 1e-9 * max(1.0, abs(expected))
    return actual == expected


def main() -> None:
    from pyspark.sql import functions as F

    from logstream import schemas
    from logstream.config import Settings
    from logstream.runtime.spark import build_spark_session
    from logstream.transforms.parsing import ParseOptions, parse_log_records

    manifest = json.loads((CORPUS / "MANIFEST.json").read_text())
    settings = Settings.load(env={}).replace(spark_master="local[2]")
    spark = build_spark_session("corpus-coverage", settings)
    records = [
        (None, line, entry["file"], 0, offset, None)
        for entry in manifest
        for offset, line in enumerate(_lines((CORPUS / entry["file"]).read_bytes()))
    ]
    parsed = (
        spark.createDataFrame(records, schemas.KAFKA_RECORD)
        .transform(parse_log_records(ParseOptions()))
        .withColumn("event_time", F.date_format("event_time", "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"))
    )
    rows = {
        (r["kafka_topic"], r["kafka_offset"]): r.asDict(recursive=True) for r in parsed.collect()
    }
    spark.stop()
    print("| file | lines | lines right | fields | fields right |")
    print("| --- | ---: | ---: | ---: | ---: |")
    totals = [0, 0, 0, 0]
    for entry in manifest:
        name = entry["file"]
        expected_path = CORPUS / name.replace(".log", ".expected.jsonl")
        expected = [json.loads(x) for x in expected_path.read_text().splitlines() if x.strip()]
        fields = right = lines_right = 0
        for offset, wanted in enumerate(expected):
            row = rows[(name, offset)]
            checks = [
                _right(row, key, value, "reason" in wanted)
                for key, value in wanted.items()
                if key != "source_format"
            ]
            fields += len(checks)
            right += sum(checks)
            lines_right += all(checks)
        totals = [
            a + b for a, b in zip(totals, (len(expected), lines_right, fields, right), strict=True)
        ]
        print(f"| {name} | {len(expected)} | {lines_right} | {fields} | {right} |")
    lines, lines_right, fields, right = totals
    print(
        f"| **all** | {lines} | {lines_right} ({100 * lines_right / lines:.0f} %) | {fields} | "
        f"{right} ({100 * right / fields:.0f} %) |"
    )


if __name__ == "__main__":
    main()
