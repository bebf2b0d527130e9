"""The anomaly rules that look back (logstream.catalog.anomalies): batches, restarts and replays.

The stream runs the z-score and error-rate rules on each micro-batch's new windows against the
windows it keeps per service, seeded from the committed table when a process starts. Whatever
the batch boundaries, restarts and replays, the detections must be those of the independent
oracle (tests/oracle.py) over the whole series at once.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from logstream.catalog import anomalies
from tests import oracle

T0 = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # the series crosses midnight
RULES = {rule.kind: rule for rule in anomalies.HISTORY_RULES}


def _series(seed: int, minutes: int = 90) -> list[dict]:
    """Per service and minute: an average response time (sometimes null, sometimes a jump) and
    an error rate (sometimes a spike), in window order."""
    rng = random.Random(seed)
    rows = []
    for minute in range(minutes):
        start = T0 + timedelta(minutes=minute)
        for service in ("api", "auth", "cart"):
            average = None if rng.random() < 0.1 else rng.gauss(0.2, 0.02)
            if average is not None and rng.random() < 0.08:
                average *= rng.choice((0.3, 3.0))
            rate = rng.uniform(0, 5) + (rng.choice((15.0, 40.0)) if rng.random() < 0.1 else 0.0)
            rows.append(
                {
                    "service": service,
                    "window_start": start,
                    "window_end": start + timedelta(minutes=1),
                    "avg_response_time": average,
                    "error_rate": rate,
                }
            )
    return rows


def _want(rows: list[dict]) -> dict[str, set]:
    return {
        "response_time_zscore": {
            (a["key"], a["window_start"], a["observed"]) for a in oracle.response_time_zscore(rows)
        },
        "error_rate_spike": {
            (a["key"], a["window_start"], a["observed"]) for a in oracle.error_rate_spike(rows)
        },
    }


def _run(rows: list[dict], seed: int) -> dict[str, set]:
    """Feed the series in random batches, restarting the process now and then: a restart seeds
    a new history from what was committed, sometimes including the batch it then replays."""
    rng = random.Random(seed)
    thresholds = anomalies.Thresholds()
    histories = {kind: anomalies.KeyHistory(rule, thresholds) for kind, rule in RULES.items()}
    got: dict[str, list] = {kind: [] for kind in RULES}
    committed: list[dict] = []
    position = 0
    while position < len(rows):
        batch = rows[position : position + rng.randint(1, 40)]
        replayed = rng.random() < 0.3
        if rng.random() < 0.3:  # a new process: history from the table (today and yesterday)
            table = committed + (batch if replayed else [])
            histories = {
                kind: anomalies.KeyHistory(rule, thresholds) for kind, rule in RULES.items()
            }
            for history in histories.values():
                history.add(table)
        for kind, history in histories.items():
            got[kind] += history.detect(batch)
        committed += batch
        position += len(batch)
    return {
        kind: {(a["entity"], a["window_start"], a["observed"]) for a in found}
        for kind, found in got.items()
    }


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_history_rules_match_the_oracle_whatever_the_batches_and_restarts(seed):
    rows = _series(seed)
    want = _want(rows)
    assert all(want.values()), "the series must exercise both rules"
    assert _run(rows, seed) == want


def test_detections_are_rows_of_the_anomalies_table():
    rows = _series(5)
    history = anomalies.KeyHistory(RULES["response_time_zscore"], anomalies.Thresholds())
    found = history.detect(rows)
    assert found
    for row in found:
        assert set(row) == set(anomalies.ANOMALY_COLUMNS)
        assert row["window_date"] == row["window_start"].date()
        assert row["severity"] in ("warning", "critical")
        text = f"response_time_zscore|{row['entity']}|{row['window_start']:%Y-%m-%d %H:%M:%S}"
        assert row["anomaly_id"] == hashlib.sha256(text.encode()).hexdigest()


def test_lookback_and_minimum_history_come_from_the_thresholds():
    rule = RULES["response_time_zscore"]
    flat = [
        {"service": "api", "window_start": T0 + timedelta(minutes=m), "avg_response_time": v}
        for m, v in enumerate([1.0, 1.1, 1.0, 1.1, 5.0])
    ]
    for row in flat:
        row["window_end"] = row["window_start"] + timedelta(minutes=1)
    # the jump at minute 4 has 4 earlier windows: enough for min_history 3, not for 5
    assert len(anomalies.KeyHistory(rule, anomalies.Thresholds()).detect(flat)) == 1
    strict = anomalies.Thresholds(zscore_min_history=5)
    assert anomalies.KeyHistory(rule, strict).detect(flat) == []
    # with a lookback of 2 the baseline is (1.0, 1.1): still a jump
    short = anomalies.KeyHistory(
        rule, anomalies.Thresholds(zscore_lookback=2, zscore_min_history=2)
    )
    assert [r["window_start"] for r in short.detect(flat)] == [flat[4]["window_start"]]
    assert short.windows["api"] == flat[3:]


def test_ids_are_those_spark_computed_in_earlier_releases(spark):
    """Earlier releases computed the id in Spark: sha2(concat_ws('|', kind, entity,
    CAST(window_start AS STRING)), 256) in a UTC session; the stored ids must not change."""
    instants = [T0, T0 + timedelta(microseconds=250_000), T0 + timedelta(microseconds=123_456)]
    frame = spark.createDataFrame(
        [("ddos_suspect", "10.0.0.1", t) for t in instants], ["k", "e", "t"]
    )
    spark_ids = [
        row[0]
        for row in frame.selectExpr("sha2(concat_ws('|', k, e, CAST(t AS STRING)), 256)").collect()
    ]
    ours = [
        anomalies.stable_id("ddos_suspect", "10.0.0.1", anomalies.timestamp_text(t))
        for t in instants
    ]
    assert ours == spark_ids


def test_timestamp_text_is_the_utc_wall_clock():
    plus_two = timezone(timedelta(hours=2))
    assert anomalies.timestamp_text(datetime(2026, 11, 26, 1, 30, tzinfo=plus_two)) == (
        "2026-11-25 23:30:00"
    )
    assert anomalies.timestamp_text(T0 + timedelta(microseconds=120_000)) == (
        "2026-11-25 23:30:00.12"
    )


def test_every_rule_reads_columns_its_family_declares(spark):
    """Rules name their family's columns by string: each must be a column of that family's table
    (its keys and declared metrics), or the rule would fail only on the first matching window."""
    from logstream import catalog
    from logstream.storage.tables import table_schema

    for rule in anomalies.HISTORY_RULES:
        family = catalog.FAMILY_BY_NAME[rule.family]
        declared = {*family.keys, *(metric.name for metric in family.metrics)}
        assert {rule.key, *rule.columns} <= declared, rule.kind
    thresholds = anomalies.Thresholds()
    for rule in anomalies.FILTER_RULES:
        assert rule.family in catalog.FAMILY_BY_NAME, rule.kind
        windows = spark.createDataFrame([], table_schema(spark, rule.family))
        # Spark resolves every column when the plan is built: a misspelt one raises here
        shaped = windows.where(rule.where(thresholds)).select(
            "window_start", "window_end", *[c().alias(n) for n, c in rule.columns.items()]
        )
        assert shaped.columns == ["window_start", "window_end", *rule.columns], rule.kind
