"""Backfilling archives with the real Spark session: two small files (JSON lines, and an Apache
combined access log from 2015 with CRLF endings) land in bronze ``events``/``quarantine`` as
written out below, a re-run adds nothing, a date range lands its days and a later run the rest,
and a crash before the commit record is rolled back by the next run."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from logstream.batch.backfill import BackfillRequest, backfill
from logstream.storage.fs import HadoopFS
from logstream.storage.tables import read_table

# (line, expectation): "event" lines with their hand-read fields, or the quarantine reason
JSON_LINES = [
    (
        b'{"timestamp": "2015-12-22T10:15:00Z", "level": "INFO", "service": "auth", '
        b'"message": "login ok", "ip_address": "10.0.0.1", "user_id": "u1", '
        b'"response_time": 0.12, "status_code": 200}',
        {"service": "auth", "event_time": "2015-12-22T10:15:00", "status_code": 200},
    ),
    (  # epoch seconds; a non-UTF-8 byte in the message reaches the parser as a byte
        b'{"timestamp": 1450866000, "level": "ERROR", "service": "search", '
        b'"message": "caf\xe9 down", "status_code": 503}',
        {"service": "search", "event_time": "2015-12-23T10:20:00", "message": "caf\ufffd down"},
    ),
    (
        b'{"timestamp": "2015-12-22T23:59:59.500Z", "service": "auth", "status_code": 404}',
        {"service": "auth", "event_time": "2015-12-22T23:59:59.500000", "status_code": 404},
    ),
    (b"", "empty"),
    (b'{"service": "auth", "message": "no time"}', "missing_timestamp"),
    (b"{not json", "invalid_json"),
    (
        b'{"timestamp": "2015-12-23T00:00:01Z", "service": "cart", "shard": "7"}',
        {"service": "cart", "event_time": "2015-12-23T00:00:01", "extra": {"shard": "7"}},
    ),
]
ACCESS_LINES = [
    (
        b'93.180.71.3 - - [17/May/2015:08:05:32 +0000] "GET /downloads/product_1 HTTP/1.1" '
        b'304 0 "-" "Debian APT-HTTP/1.3 (0.8.16~exp12ubuntu10.21)"',
        {"service": "shop", "event_time": "2015-05-17T08:05:32", "status_code": 304},
    ),
    (
        b'217.168.17.5 - - [17/May/2015:10:05:43 +0200] "GET /downloads/product_2 HTTP/1.1" '
        b'200 490 "-" "Debian APT-HTTP/1.3 (0.8.10.3)"',
        {"service": "shop", "event_time": "2015-05-17T08:05:43", "bytes_sent": 490},
    ),
    (b"this is not an access log line", "unrecognized_format"),
    (
        b'80.91.33.133 - - [18/May/2015:00:30:00 +0000] "GET /downloads/product_1 HTTP/1.1" '
        b'404 336 "-" "Debian APT-HTTP/1.3 (0.8.16~exp12ubuntu10.17)"',
        {"service": "shop", "event_time": "2015-05-18T00:30:00", "path": "/downloads/product_1"},
    ),
]
ALL_DAYS = ["2015-05-17", "2015-05-18", "2015-12-22", "2015-12-23"]


def write_archive(folder: Path, gzip_json: bool = False) -> dict[str, list]:
    """The two files; returns each one's URI (as Hadoop names it) -> its expectations."""
    folder.mkdir(parents=True)
    json_bytes = b"\n".join(line for line, _ in JSON_LINES) + b"\n"
    json_file = folder / ("app.jsonl.gz" if gzip_json else "app.jsonl")
    json_file.write_bytes(gzip.compress(json_bytes) if gzip_json else json_bytes)
    access_file = folder / "access 2015.log"  # a space: the URI spells it %20
    access_file.write_bytes(b"".join(line + b"\r\n" for line, _ in ACCESS_LINES))
    return {
        f"file:{folder}/access%202015.log": [what for _, what in ACCESS_LINES],
        f"file:{json_file}": [what for _, what in JSON_LINES],
    }


def expected_events(archive: dict[str, list], days: list[str] = ALL_DAYS) -> dict[str, dict]:
    return {
        f"{uri}:0:{line}": what
        for uri, lines in archive.items()
        for line, what in enumerate(lines)
        if isinstance(what, dict) and what["event_time"][:10] in days
    }


def expected_quarantine(archive: dict[str, list]) -> set[tuple[str, int, str]]:
    return {
        (uri, line, what)
        for uri, lines in archive.items()
        for line, what in enumerate(lines)
        if isinstance(what, str)
    }


@pytest.fixture
def local(settings, tmp_path: Path):
    return settings.replace(data_root=str(tmp_path / "data"))


def events_by_id(spark, local) -> dict[str, dict]:
    rows = [row.asDict() for row in read_table(spark, local, "events").collect()]
    by_id = {row["event_id"]: row for row in rows}
    assert len(by_id) == len(rows), "an event_id landed twice"
    return by_id


def quarantine_rows(spark, local) -> list[dict]:
    return [row.asDict() for row in read_table(spark, local, "quarantine").collect()]


def test_backfill_lands_every_line_once_and_a_rerun_adds_nothing(spark, local, tmp_path: Path):
    archive = write_archive(tmp_path / "archive")
    request = BackfillRequest(f"{tmp_path}/archive/*", service="shop")
    # small blocks, so that Spark splits the JSON file and the line numbering is put to work
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "200")
    try:
        summary = backfill(spark, local, request).as_dict()
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)

    assert summary == {
        "files": 2,
        "files_already_landed": 0,
        "changed_files": [],
        "lines": 11,
        "events_landed": 7,
        "quarantined": 4,
        "skipped_already_landed": 0,
        "skipped_out_of_range": 0,
        "days_touched": ALL_DAYS,
        "days_landed": ALL_DAYS,
        "commits": 1,
        "first_day": "2015-05-17",
        "last_day": "2015-12-23",
    }
    events = events_by_id(spark, local)
    assert set(events) == set(expected_events(archive))
    today = datetime.now(UTC).date()
    for event_id, expected in expected_events(archive).items():
        row = events[event_id]
        for name, value in expected.items():
            got = row[name].isoformat() if name == "event_time" else row[name]
            assert got == value, (event_id, name)
        assert row["event_date"] == date.fromisoformat(expected["event_time"][:10])
        assert row["event_hour"] == int(expected["event_time"][11:13])
        assert (row["kafka_partition"], row["kafka_timestamp"], row["lateness_ms"]) == (
            0,
            None,
            None,
        )
        assert row["kafka_topic"] == event_id.rsplit(":0:", 1)[0]
        assert row["processing_time"].date() == today
    quarantined = quarantine_rows(spark, local)
    assert {(r["kafka_topic"], r["kafka_offset"], r["reason"]) for r in quarantined} == (
        expected_quarantine(archive)
    )
    raw = {r["reason"]: (r["raw_value"], r["raw_length"]) for r in quarantined}
    assert raw["invalid_json"] == (b"{not json", 9)
    assert raw["unrecognized_format"][0] == b"this is not an access log line"  # no \r
    assert {r["quarantine_date"] for r in quarantined} == {today}

    # a re-run: every file is complete in the ledger, nothing is read or added
    again = backfill(spark, local, request).as_dict()
    assert {k: again[k] for k in ("files_already_landed", "events_landed", "quarantined")} == {
        "files_already_landed": 2,
        "events_landed": 0,
        "quarantined": 0,
    }
    assert (again["lines"], again["skipped_already_landed"], again["commits"]) == (11, 11, 0)
    assert (again["days_touched"], again["days_landed"]) == (ALL_DAYS, [])
    assert len(events_by_id(spark, local)) == 7
    assert len(quarantine_rows(spark, local)) == 4

    # a landed file that grows is a changed file: skipped and named, never landed twice
    access = tmp_path / "archive" / "access 2015.log"
    access.write_bytes(access.read_bytes() + ACCESS_LINES[0][0] + b"\r\n")
    changed = backfill(spark, local, request).as_dict()
    assert changed["changed_files"] == [f"file:{tmp_path}/archive/access%202015.log"]
    assert (changed["events_landed"], changed["files_already_landed"]) == (0, 1)
    assert len(events_by_id(spark, local)) == 7


def test_date_range_then_the_rest_after_a_crash(spark, local, tmp_path: Path, monkeypatch):
    archive = write_archive(tmp_path / "archive", gzip_json=True)
    folder = f"{tmp_path}/archive"

    # only 2015-12-22: two JSON events; every rejected line of both files is quarantined
    first = backfill(
        spark,
        local,
        BackfillRequest(folder, "auto", "shop", date(2015, 12, 22), date(2015, 12, 22)),
    ).as_dict()
    assert (first["events_landed"], first["quarantined"], first["skipped_out_of_range"]) == (
        2,
        4,
        5,
    )
    assert first["days_touched"] == ["2015-12-22"]
    assert set(events_by_id(spark, local)) == set(expected_events(archive, ["2015-12-22"]))

    # the rest, but the job dies right before its commit record: its moved files are visible
    real_write_text = HadoopFS.write_text

    def crash_before_commit(self, path: str, text: str) -> None:
        if path.endswith(".done"):
            raise OSError("driver killed")
        real_write_text(self, path, text)

    monkeypatch.setattr(HadoopFS, "write_text", crash_before_commit)
    with pytest.raises(OSError, match="driver killed"):
        backfill(spark, local, BackfillRequest(folder, service="shop"))
    monkeypatch.undo()
    assert read_table(spark, local, "events").count() == 7  # 2 committed + 5 uncommitted

    # the next run rolls the attempt back and lands it: every line exactly once
    last = backfill(spark, local, BackfillRequest(folder, service="shop")).as_dict()
    assert (last["events_landed"], last["quarantined"]) == (5, 0)
    assert (last["skipped_already_landed"], last["skipped_out_of_range"]) == (6, 0)
    assert last["days_touched"] == ALL_DAYS
    assert last["days_landed"] == ["2015-05-17", "2015-05-18", "2015-12-23"]
    events = events_by_id(spark, local)
    assert set(events) == set(expected_events(archive))
    assert {
        (r["kafka_topic"], r["kafka_offset"], r["reason"]) for r in quarantine_rows(spark, local)
    } == expected_quarantine(archive)
    commits = Path(local.data_root) / "events" / "_commits" / "backfill"
    records = [json.loads(path.read_text()) for path in sorted(commits.glob("*.done"))]
    assert len(records) == 2 and not list(commits.glob("*.manifest"))
    assert all(entry["complete"] for entry in records[-1]["files"])
