"""The latency report end to end on real Parquet and Spark, against a plain-Python oracle.

Bronze events with known timestamps and a progress history are written for a few hours; the
report's table rows must equal what plain Python computes over the same inputs: exact counts and
maxima, averages to 1e-9, percentiles within percentile_approx's rank error. Re-running an hour
replaces its rows (no duplicates) and leaves the day's other hours alone.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from logstream import schemas
from logstream.batch.latency import STAGE_ORDER
from logstream.catalog.aggregates import PERCENTILE_ACCURACY
from logstream.reports import latency
from logstream.storage.tables import table_path
from logstream.stream.history import append_history
from tests.include.reports.hostile import HOSTILE, assert_shown_as_text
from tests.oracle import percentile_rank_ok

HOUR = datetime(2026, 11, 25, 13, tzinfo=UTC)
NEXT_HOUR = HOUR + timedelta(hours=1)
MS = timedelta(milliseconds=1)
#: service -> (events in HOUR, kafka->processed range in ms): OK, WARNING and CRITICAL on average
SERVICES = {"api": (300, (20, 400)), "checkout": (120, (900, 1300)), "search": (40, (2500, 3500))}
LATENCY_STAGES = ("event_to_kafka_ms", "kafka_to_processed_ms", "end_to_end_ms")


def make_events(rng: random.Random) -> list[dict]:
    """Events in HOUR per SERVICES, plus a few in the hours around it (not in HOUR's report)."""
    events = []
    plan = [(HOUR, name, n, spread) for name, (n, spread) in SERVICES.items()]
    plan += [(HOUR - timedelta(hours=1), "api", 25, (10, 50)), (NEXT_HOUR, "api", 30, (10, 50))]
    for hour, service, count, (low, high) in plan:
        for _ in range(count):
            event_time = hour + timedelta(microseconds=rng.randrange(3_600_000_000))
            kafka = event_time + timedelta(microseconds=rng.randrange(-50_000, 300_000))
            processed = kafka + timedelta(microseconds=rng.randrange(low * 1000, high * 1000))
            row = {name: None for name in schemas.EVENTS.fieldNames()}
            row.update(
                event_id=f"logs:0:{len(events)}",
                event_time=event_time,
                service=service,
                kafka_timestamp=kafka,
                processing_time=processed,
                event_date=event_time.date(),
                event_hour=event_time.hour,
            )
            events.append(row)
    return events


def make_history(rng: random.Random) -> list[dict]:
    """Progress history lines of two ingestion queries, the second with a watermark."""
    lines = []
    for second in range(-30, 3630, 60):  # one line a minute, some outside HOUR
        stamp = HOUR + timedelta(seconds=second)
        lines.append(
            {
                "timestamp": stamp.isoformat().replace("+00:00", "Z"),
                "query": "ingest_logs",
                "batch_duration_ms": rng.randrange(200, 3000),
                "kafka_lag": rng.randrange(0, 5000),
                "event_time_lag_ms": rng.uniform(100, 4000),
                "watermark": None,
            }
        )
        lines.append(
            {
                "timestamp": stamp.isoformat(),
                "query": "ingest_user_events",
                "batch_duration_ms": rng.randrange(100, 900),
                "kafka_lag": None,
                "event_time_lag_ms": None,
                "watermark": (stamp - timedelta(seconds=rng.randrange(300, 400))).isoformat(),
            }
        )
    return lines


@pytest.fixture(scope="module")
def world(spark, settings, tmp_path_factory):
    root = tmp_path_factory.mktemp("latency")
    run_settings = settings.replace(
        data_root=str(root / "data"),
        status_dir=str(root / "status"),
        reports_dir=str(root / "reports"),
        alert_sink=f"jsonl:{root / 'alerts.jsonl'}",
    )
    rng = random.Random(20261125)
    events = make_events(rng)
    fields = schemas.EVENTS.fieldNames()
    (
        spark.createDataFrame([tuple(e[f] for f in fields) for e in events], schemas.EVENTS)
        .write.partitionBy("event_date", "event_hour")
        .parquet(table_path(run_settings, "events"))
    )
    history = make_history(rng)
    for line in history:
        append_history(run_settings.status_dir, line)
    first = latency.run_report(spark, run_settings, HOUR)
    return {
        "settings": run_settings,
        "events": events,
        "history": history,
        "root": root,
        "first": first,
        "first_rows": sorted(map(str, table_rows(spark, run_settings, HOUR))),
    }


# -- the oracle -----------------------------------------------------------------------------------
def oracle_level(stage: str, avg: float) -> str | None:
    if stage not in ("end_to_end_ms", "kafka_to_processed_ms"):
        return None
    return "CRITICAL" if avg > 2000 else "WARNING" if avg > 1000 else "INFO" if avg > 500 else "OK"


def oracle_samples(events: list[dict], history: list[dict], hour: datetime) -> dict:
    """(scope, service, stage) -> the sample values, computed directly from the inputs."""
    samples: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    end = hour + timedelta(hours=1)
    for e in events:
        if not hour <= e["event_time"] < end:
            continue
        values = {
            "event_to_kafka_ms": (e["kafka_timestamp"] - e["event_time"]) / MS,
            "kafka_to_processed_ms": (e["processing_time"] - e["kafka_timestamp"]) / MS,
            "end_to_end_ms": (e["processing_time"] - e["event_time"]) / MS,
        }
        for stage, value in values.items():
            samples[("service", e["service"], stage)].append(value)
            samples[("all", "*", stage)].append(value)
    for line in history:
        stamp = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
        if not hour <= stamp < end:
            continue
        query = line["query"]
        samples[("query", query, "batch_duration_ms")].append(float(line["batch_duration_ms"]))
        if line["kafka_lag"] is not None:
            samples[("query", query, "kafka_lag_records")].append(float(line["kafka_lag"]))
        if line["event_time_lag_ms"] is not None:
            samples[("query", query, "event_time_lag_ms")].append(line["event_time_lag_ms"])
        if line["watermark"] is not None:
            watermark = datetime.fromisoformat(line["watermark"])
            samples[("query", query, "watermark_delay_ms")].append((stamp - watermark) / MS)
    return samples


def table_rows(spark, settings, hour: datetime) -> list[dict]:
    frame = spark.read.parquet(table_path(settings, "latency_report"))
    rows = [r.asDict() for r in frame.collect()]
    return [r for r in rows if r["report_hour"].astimezone(UTC) == hour]


def assert_matches_oracle(rows: list[dict], samples: dict) -> None:
    got = {(r["scope"], r["service"], r["stage"]): r for r in rows}
    assert len(got) == len(rows), "duplicate rows for one (scope, service, stage)"
    assert set(got) == set(samples)
    for key, values in samples.items():
        row, ordered = got[key], sorted(values)
        assert row["count"] == len(values), key
        assert row["max"] == pytest.approx(ordered[-1], abs=1e-9), key
        assert row["avg"] == pytest.approx(math.fsum(values) / len(values), rel=1e-9), key
        for name, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            assert percentile_rank_ok(ordered, p, row[name], PERCENTILE_ACCURACY), key
        assert row["alert_level"] == oracle_level(key[2], math.fsum(values) / len(values)), key
        assert row["unit"] == ("records" if key[2] == "kafka_lag_records" else "ms")


# -- tests ----------------------------------------------------------------------------------------
def test_report_table_and_html_match_the_oracle(spark, world):
    settings, result = world["settings"], world["first"]
    samples = oracle_samples(world["events"], world["history"], HOUR)
    rows = table_rows(spark, settings, HOUR)
    assert_matches_oracle(rows, samples)
    assert {r["report_date"].isoformat() for r in rows} == {"2026-11-25"}
    levels = {r["service"]: r["alert_level"] for r in rows if r["stage"] == "end_to_end_ms"}
    assert levels["api"] == "OK" and levels["search"] == "CRITICAL"

    # the HTML page names every service and query, and latest.html is the same page
    folder = Path(settings.reports_dir) / "latency"
    assert result.html_path == folder / "2026-11-25T13.html"
    page = result.html_path.read_text()
    text: list[str] = []
    parser = HTMLParser()
    parser.handle_data = text.append  # type: ignore[method-assign]
    parser.feed(page)
    for name in (*SERVICES, "ingest_logs", "ingest_user_events"):
        assert name in "".join(text)
    assert page.count("<svg") == len(STAGE_ORDER)
    assert (folder / "latest.html").read_text() == page
    summary = json.loads(result.summary_path.read_text())
    assert summary["html_url"] == result.html_path.as_uri()
    assert len(summary["rows"]) == len(rows)


def test_rerunning_an_hour_replaces_its_rows_and_keeps_the_other_hours(spark, world):
    settings = world["settings"]
    latency.run_report(spark, settings, NEXT_HOUR)
    latency.run_report(spark, settings, HOUR)  # again, after another hour of the same day

    assert sorted(map(str, table_rows(spark, settings, HOUR))) == world["first_rows"]
    assert_matches_oracle(
        table_rows(spark, settings, HOUR), oracle_samples(world["events"], world["history"], HOUR)
    )
    assert_matches_oracle(
        table_rows(spark, settings, NEXT_HOUR),
        oracle_samples(world["events"], world["history"], NEXT_HOUR),
    )
    # latest.html follows the newest hour, not the last run
    folder = Path(settings.reports_dir) / "latency"
    assert (folder / "latest.html").read_text() == (folder / "2026-11-25T14.html").read_text()


def test_an_hour_without_events_writes_an_empty_report(spark, world):
    settings = world["settings"]
    quiet = HOUR + timedelta(hours=5)
    result = latency.run_report(spark, settings, quiet)
    assert result.rows == []
    assert table_rows(spark, settings, quiet) == []
    assert "No events" in result.html_path.read_text()
    assert json.loads(result.summary_path.read_text())["rows"] == []


def test_publish_sends_warning_and_critical_services_as_alerts(spark, world):
    settings = world["settings"]
    result = latency.publish_report(settings, "2026-11-25T13", {"airflow_log": "http://x/log"})

    alerts = [
        json.loads(line) for line in (world["root"] / "alerts.jsonl").read_text().splitlines()
    ]
    samples = oracle_samples(world["events"], world["history"], HOUR)
    expected = {}
    for (scope, service, stage), values in samples.items():
        level = oracle_level(stage, math.fsum(values) / len(values))
        if scope == "service" and level in ("WARNING", "CRITICAL"):
            expected[f"latency:{service}:{stage}:2026-11-25T13"] = level.lower()
    assert {a["dedup_key"]: a["severity"] for a in alerts} == expected
    assert expected["latency:search:end_to_end_ms:2026-11-25T13"] == "critical"
    assert sorted(result["alerts"]) == sorted(expected)
    for alert in alerts:
        assert alert["kind"] == "latency"
        assert alert["links"]["report"].startswith("file://")
        assert alert["links"]["airflow_log"] == "http://x/log"


def test_the_job_rejects_bad_arguments_with_exit_code_2(tmp_path, capsys):
    from jobs.latency_report import main

    assert main(["--hour", "2026-11-25 13:00"]) == 2
    assert "YYYY-MM-DDTHH" in capsys.readouterr().err
    assert main(["--hour", "2026-11-25T13", "--set", "no_equals_sign"]) == 2
    assert main(["--hour", "2026-11-25T13", "--set", "no_such_setting=1"]) == 2
    assert "unknown setting" in capsys.readouterr().err
    # hdfs:// and s3a:// are shared storage; any other scheme is refused before Spark starts
    assert main(["--hour", "2026-11-25T13", "--set", "reports_dir=gs://bucket/r"]) == 2
    with pytest.raises(SystemExit) as missing:
        main([])
    assert missing.value.code == 2


def test_hostile_names_in_the_events_are_text_in_the_page(spark, settings, tmp_path):
    """Service, path, user agent and user id hold HTML: the page built from them shows the
    services as text and carries no markup from any of them."""
    run_settings = settings.replace(
        data_root=str(tmp_path / "data"),
        status_dir=str(tmp_path / "status"),
        reports_dir=str(tmp_path / "reports"),
    )
    events = []
    for n, value in enumerate(HOSTILE):
        event_time = HOUR + timedelta(minutes=n)
        row = {name: None for name in schemas.EVENTS.fieldNames()}
        row.update(
            event_id=f"logs:0:{n}",
            event_time=event_time,
            service=value,
            path=f"/{value}",
            user_agent=value,
            user_id=value,
            kafka_timestamp=event_time + 20 * MS,
            processing_time=event_time + (300 + 1000 * n) * MS,  # OK up to CRITICAL
            event_date=event_time.date(),
            event_hour=event_time.hour,
        )
        events.append(tuple(row[name] for name in schemas.EVENTS.fieldNames()))
    (
        spark.createDataFrame(events, schemas.EVENTS)
        .write.partitionBy("event_date", "event_hour")
        .parquet(table_path(run_settings, "events"))
    )

    result = latency.run_report(spark, run_settings, HOUR)

    assert {row["service"] for row in result.rows if row["scope"] == "service"} == set(HOSTILE)
    page = result.html_path.read_text()
    assert_shown_as_text(page, shown=HOSTILE)
    summary = result.summary_path.read_text()
    assert "<" not in summary and ">" not in summary  # safe to embed in a page as it is
    services = {row["service"] for row in json.loads(summary)["rows"]}
    assert set(HOSTILE) <= services
