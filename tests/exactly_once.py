"""Exactly once, checked against the independent oracle (tests/oracle.py): after a run with
kills, every valid event landed once and the final windows and look-back anomalies are what the
oracle computes over the same events."""

from __future__ import annotations

from datetime import UTC

from logstream.config import Settings
from logstream.storage.tables import read_table
from tests import oracle

#: The metric tables compared: (table, oracle function, watermark delay s, exact columns).
METRIC_TABLES = (
    ("error_rate", oracle.error_rate_per_service, 300, ("total_requests", "error_count")),
    ("sla", oracle.sla_per_service, 300, ("total_requests", "fast_requests")),
    ("system_health", oracle.system_health, 300, ("total_requests", "active_users")),
)


def assert_exactly_once(spark, settings: Settings, by_id: dict) -> None:
    """Every valid event landed once; the metric tables' final windows and the look-back
    anomalies equal the oracle's over the same events."""
    if "://" in settings.data_root:
        from logstream.runtime.spark import build_spark_session

        # the test session reads HDFS or S3 with the run's storage settings (s3a credentials)
        spark = build_spark_session("logstream-tests", settings)
    valid = {event_id for event_id, record in by_id.items() if record.truth is not None}
    rows = read_table(spark, settings, "events").select("event_id", "processing_time").collect()
    landed = [row.event_id for row in rows]
    assert len(landed) == len(set(landed)), "duplicated events"
    assert set(landed) == valid, (
        f"events missing: {len(valid - set(landed))}, unexpected: {len(set(landed) - valid)}"
    )
    processed = {row.event_id: row.processing_time.replace(tzinfo=UTC) for row in rows}
    truth = [
        {**record.truth, "processing_time": processed[event_id]}
        for event_id, record in by_id.items()
        if record.truth is not None
    ]
    for table, oracle_rows, delay, columns in METRIC_TABLES:
        want = oracle.final(oracle_rows(truth), oracle.final_watermark(truth, delay))
        got = [row.asDict() for row in read_table(spark, settings, table).collect()]

        def key(row):
            return (row.get("service"), row["window_start"].replace(tzinfo=UTC))

        assert len(got) == len({key(r) for r in got}), f"{table}: duplicate windows"
        got_by_key = {key(r): r for r in got}
        assert set(got_by_key) == {key(r) for r in want}, table
        for row in want:
            for column in columns:
                assert got_by_key[key(row)][column] == row[column], (table, key(row), column)

    response = [row.asDict() for row in read_table(spark, settings, "response_time").collect()]
    errors = [row.asDict() for row in read_table(spark, settings, "error_rate").collect()]
    want_found = {
        ("response_time_zscore", a["key"], a["window_start"])
        for a in oracle.response_time_zscore(response)
    } | {("error_rate_spike", a["key"], a["window_start"]) for a in oracle.error_rate_spike(errors)}
    found = [
        row.asDict()
        for row in read_table(spark, settings, "anomalies").collect()
        if row.kind in ("response_time_zscore", "error_rate_spike")
    ]
    assert want_found, "the data must exercise the look-back rules"
    assert len(found) == len({row["anomaly_id"] for row in found}), "duplicated anomalies"
    got_found = {(r["kind"], r["entity"], r["window_start"]) for r in found}
    assert got_found == want_found, (
        f"anomalies missing: {sorted(want_found - got_found)}; "
        f"unexpected: {sorted(got_found - want_found)}"
    )
