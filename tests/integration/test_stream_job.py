"""End to end against the independent oracle (tests/oracle.py): a seeded dataset with late and
malformed records goes through a real broker and the real streaming pipeline; every table is
compared with values computed in plain Python from the generator's ground truth.

Late records are produced in a second phase, after everything else was processed, so that
"late" does not depend on micro-batch boundaries: each is >= 15 min behind the high-water mark,
later than every watermark delay.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from logstream.alerts import build_alert_sink
from logstream.devtools.generator import GeneratorConfig, generate_logs, generate_user_events
from logstream.kafka.admin import ensure_topics
from logstream.ops.alertmanager import LocalAlertmanager
from logstream.storage.tables import read_table
from logstream.stream.job import RunOptions, run_pipeline
from logstream.stream.status import StatusListener, TotalsRegistry
from tests import oracle
from tests.helpers import Receiver, alertmanager_test_config, produce_with_ids

REL = 1e-9
MS = timedelta(milliseconds=1)


@pytest.fixture(scope="module")
def alertmanager_hook(settings, tmp_path_factory):
    """A real Alertmanager with the shipped routes (group_wait 3 s instead of 30 s, and a
    group_interval of 1 h instead of 5 min, so that however slow the run no group sends an
    update) whose Slack and webhook receivers post to ``hook``."""
    if shutil.which("prometheus-alertmanager") is None:
        pytest.skip("prometheus-alertmanager missing")
    folder: Path = tmp_path_factory.mktemp("alertmanager")
    with Receiver() as hook:
        config = alertmanager_test_config(folder / "config", hook.url, "3s", "1h")
        am_settings = settings.replace(
            state_dir=folder / "state", alertmanager_port=0, alertmanager_config=str(config)
        )
        manager = LocalAlertmanager(am_settings)
        manager.start()
        try:
            yield manager, hook
        finally:
            manager.stop()


@pytest.fixture(scope="module")
def e2e(spark, kafka_broker, settings, tmp_path_factory, alertmanager_hook):
    root: Path = tmp_path_factory.mktemp("e2e")
    manager, _ = alertmanager_hook
    run_settings = settings.replace(
        data_root=str(root / "data"),
        checkpoint_root=str(root / "checkpoints"),
        status_dir=str(root / "status"),
        logs_topic="e2e-logs",
        user_events_topic="e2e-user-events",
        alert_sink=f"jsonl:{root / 'alerts.jsonl'},alertmanager:{manager.url}",
        max_offsets_per_trigger=20_000,
    )
    ensure_topics(kafka_broker.bootstrap, ["e2e-logs", "e2e-user-events"], 4)
    config = GeneratorConfig(
        seed=42,
        count=84_000,
        events_per_second=40.0,
        logs_topic="e2e-logs",
        user_events_topic="e2e-user-events",
    )
    records = generate_logs(config) + generate_user_events(config, 3_000)
    on_time = [r for r in records if not r.late]
    late = [r for r in records if r.late]

    registry = TotalsRegistry()
    listener = StatusListener(run_settings.status_dir, registry, metrics=False)
    spark.streams.addListener(listener)
    sink = build_alert_sink(run_settings.alert_sink)
    try:
        ids = produce_with_ids(kafka_broker.bootstrap, on_time)
        run_pipeline(spark, run_settings, RunOptions(available_now=True), registry, sink)
        ids += produce_with_ids(kafka_broker.bootstrap, late)
        run_pipeline(spark, run_settings, RunOptions(available_now=True), registry, sink)
    finally:
        spark.streams.removeListener(listener)
    by_id = dict(zip(ids, on_time + late, strict=True))
    return {"settings": run_settings, "records": by_id, "root": root}


def _read(spark, e2e, table):
    return [
        row.asDict(recursive=True) for row in read_table(spark, e2e["settings"], table).collect()
    ]


def _aware(moment):
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _truth(e2e, spark, topic, late=None):
    """Valid records' truth dicts with event_id and the measured processing_time."""
    table = "events" if topic == "e2e-logs" else "user_events"
    processed = {
        row["event_id"]: _aware(row["processing_time"])
        for row in read_table(spark, e2e["settings"], table)
        .select("event_id", "processing_time")
        .collect()
    }
    events = []
    for event_id, record in e2e["records"].items():
        if record.topic != topic or record.truth is None:
            continue
        if late is not None and record.late != late:
            continue
        events.append(
            {**record.truth, "event_id": event_id, "processing_time": processed.get(event_id)}
        )
    return events


def _compare(got_rows, want_rows, keys, exact=(), approx=(), sets=()):
    def key_of(row):
        return tuple(_aware(row[k]) if isinstance(row[k], datetime) else row[k] for k in keys)

    got = {key_of(row): row for row in got_rows}
    want = {key_of(row): row for row in want_rows}
    assert len(got) == len(got_rows), "duplicate window keys in the table"
    assert set(got) == set(want), (
        f"windows differ: missing {sorted(set(want) - set(got))[:3]}, "
        f"extra {sorted(set(got) - set(want))[:3]}"
    )
    for key, row in want.items():
        for column in exact:
            assert got[key][column] == row[column], (key, column)
        for column in approx:
            expected, actual = row[column], got[key][column]
            if expected is None:
                assert actual is None, (key, column)
            else:
                assert math.isclose(actual, expected, rel_tol=REL, abs_tol=1e-12), (key, column)
        for column in sets:
            assert sorted(got[key][column]) == sorted(row[column]), (key, column)
    return got, want


def test_bronze_holds_every_valid_event_exactly_once(spark, e2e):
    valid = {i for i, r in e2e["records"].items() if r.truth is not None and r.topic == "e2e-logs"}
    events = read_table(spark, e2e["settings"], "events").select("event_id", "request_id")
    ids = [row.event_id for row in events.collect()]
    assert len(ids) == len(set(ids)) == len(valid)
    assert set(ids) == valid
    user_valid = {
        i for i, r in e2e["records"].items() if r.truth is not None and r.topic == "e2e-user-events"
    }
    user_ids = [r.event_id for r in read_table(spark, e2e["settings"], "user_events").collect()]
    assert sorted(user_ids) == sorted(user_valid)


def test_every_malformed_record_is_quarantined_with_its_reason(spark, e2e):
    rows = _read(spark, e2e, "quarantine")
    got = {f"{r['kafka_topic']}:{r['kafka_partition']}:{r['kafka_offset']}": r for r in rows}
    want = {i: r for i, r in e2e["records"].items() if r.expected_reason is not None}
    assert len(got) == len(rows)
    assert set(got) == set(want)
    assert Counter(r["reason"] for r in rows) == Counter(r.expected_reason for r in want.values())
    for event_id, record in want.items():
        row = got[event_id]
        assert row["reason"] == record.expected_reason, (event_id, record.value[:80])
        assert row["raw_length"] == len(record.value)
        assert bytes(row["raw_value"]) == record.value[: e2e["settings"].raw_bytes_kept]


def test_late_events_are_captured_and_counted_in_the_status_file(spark, e2e):
    late = {i for i, r in e2e["records"].items() if r.late and r.truth and r.topic == "e2e-logs"}
    assert late, "the dataset must contain late records"
    rows = _read(spark, e2e, "late_events")
    assert {r["event_id"] for r in rows} == late
    assert all(r["lateness_ms"] > 15 * 60 * 1000 - 1 for r in rows)
    assert all(set(r["late_for"]) >= {"response_time", "ip_patterns"} for r in rows)
    status = json.loads((Path(e2e["settings"].status_dir) / "ingest_logs.json").read_text())
    assert status["rows_dropped_by_watermark"] == len(late)
    assert status["totals"]["late"] == len(late)
    assert status["kafka_lag"] == 0
    # the job's own watermark: high-water mark of the log events minus the smallest delay (5 min)
    high_water = max(
        _aware(r.truth["event_time"])
        for r in e2e["records"].values()
        if r.truth and r.topic == "e2e-logs"
    )

    def moment(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    assert abs(moment(status["watermark"]) - (high_water - timedelta(minutes=5))) < MS
    # windows of the 10-minute-delay families are final up to high-water mark - 10 min
    final_through = moment(status["windows_final_through"]["ip_patterns"])
    assert abs(final_through - (high_water - timedelta(minutes=10))) < MS


def _final(rows, events, delay_s):
    return oracle.final(rows, oracle.final_watermark(events, delay_s))


@pytest.fixture(scope="module")
def on_time_logs(spark, e2e):
    return _truth(e2e, spark, "e2e-logs", late=False)


def test_response_time_matches_oracle(spark, e2e, on_time_logs):
    want = _final(oracle.response_time_per_service(on_time_logs), on_time_logs, 300)
    got, want_by_key = _compare(
        _read(spark, e2e, "response_time"),
        want,
        ["service", "window_start"],
        exact=["request_count", "min_response_time", "max_response_time"],
        approx=["avg_response_time", "stddev_response_time"],
    )
    assert len(want) > 50
    for key, row in want_by_key.items():
        values = row["response_times"]
        for p, column in (
            (0.5, "p50_response_time"),
            (0.95, "p95_response_time"),
            (0.99, "p99_response_time"),
        ):
            if not values:
                assert got[key][column] is None
                continue
            assert oracle.percentile_rank_ok(values, p, got[key][column]), (key, column)


def test_error_rate_sla_popularity_match_oracle(spark, e2e, on_time_logs):
    keys = ["service", "window_start"]
    _compare(
        _read(spark, e2e, "error_rate"),
        _final(oracle.error_rate_per_service(on_time_logs), on_time_logs, 300),
        keys,
        exact=["total_requests", "error_count"],
        approx=["error_rate"],
    )
    _compare(
        _read(spark, e2e, "sla"),
        _final(oracle.sla_per_service(on_time_logs), on_time_logs, 300),
        keys,
        exact=["total_requests", "fast_requests", "successful_requests"],
        approx=["availability_pct", "performance_pct"],
    )
    _compare(
        _read(spark, e2e, "service_popularity"),
        _final(oracle.service_popularity(on_time_logs), on_time_logs, 300),
        keys,
        exact=["request_count", "unique_users"],
    )


def test_ip_user_health_latency_match_oracle(spark, e2e, on_time_logs):
    _compare(
        _read(spark, e2e, "ip_patterns"),
        _final(oracle.ip_patterns(on_time_logs), on_time_logs, 600),
        ["ip_address", "window_start"],
        exact=["request_count", "unique_users"],
        sets=["services_used"],
    )
    _compare(
        _read(spark, e2e, "user_activity"),
        _final(oracle.user_activity(on_time_logs), on_time_logs, 600),
        ["user_id", "window_start"],
        exact=["activity_count", "distinct_services"],
        approx=["avg_response_time"],
    )
    _compare(
        _read(spark, e2e, "system_health"),
        _final(oracle.system_health(on_time_logs), on_time_logs, 300),
        ["window_start"],
        exact=["total_requests", "active_services", "active_users", "error_count", "health_score"],
        approx=["avg_response_time", "error_rate"],
    )
    _compare(
        _read(spark, e2e, "processing_latency"),
        _final(oracle.processing_latency(on_time_logs), on_time_logs, 600),
        ["service", "window_start"],
        exact=["record_count", "max_latency_ms", "min_latency_ms", "alert_level"],
        approx=["avg_latency_ms"],
    )


def test_user_event_tables_match_oracle(spark, e2e):
    events = _truth(e2e, spark, "e2e-user-events", late=False)
    _compare(
        _read(spark, e2e, "user_event_activity"),
        _final(oracle.user_event_activity(events), events, 300),
        ["user_id", "window_start"],
        exact=["total_events", "unique_actions", "actions"],
        approx=["total_value"],
    )
    _compare(
        _read(spark, e2e, "action_metrics"),
        _final(oracle.action_metrics(events), events, 300),
        ["action", "window_start"],
        exact=["action_count", "unique_users", "max_value", "min_value"],
        approx=["avg_value"],
    )


def test_anomalies_match_oracle_and_reach_the_alert_sink(spark, e2e, on_time_logs):
    user_events = _truth(e2e, spark, "e2e-user-events", late=False)
    late_logs = _truth(e2e, spark, "e2e-logs", late=True)
    response = _final(oracle.response_time_per_service(on_time_logs), on_time_logs, 300)
    errors = _final(oracle.error_rate_per_service(on_time_logs), on_time_logs, 300)
    ips = _final(oracle.ip_patterns(on_time_logs), on_time_logs, 600)
    want = (
        oracle.response_time_zscore(response)
        + oracle.error_rate_spike(errors)
        + _final(oracle.ddos_suspect(on_time_logs), on_time_logs, 300)
        + oracle.suspicious_ip(ips)
        + _final(oracle.high_activity_user(user_events), user_events, 300)
        + oracle.late_data_user(late_logs)
    )
    kinds = Counter(a["kind"] for a in want)
    # the generated dataset exercises every rule
    assert set(kinds) == {
        "response_time_zscore",
        "error_rate_spike",
        "ddos_suspect",
        "suspicious_ip",
        "high_activity_user",
        "late_data_user",
    }, kinds

    def key(kind, entity, start):
        return (kind, entity, _aware(start) if start and kind != "late_data_user" else None)

    got_rows = _read(spark, e2e, "anomalies")
    got = Counter(key(r["kind"], r["entity"], r["window_start"]) for r in got_rows)
    expected = Counter(key(a["kind"], a["key"], a["window_start"]) for a in want)
    assert got == expected
    for row in got_rows:
        match = next(
            a
            for a in want
            if key(a["kind"], a["key"], a["window_start"])
            == key(row["kind"], row["entity"], row["window_start"])
        )
        assert math.isclose(row["observed"], match["observed"], rel_tol=REL)

    alerts = [json.loads(line) for line in (e2e["root"] / "alerts.jsonl").read_text().splitlines()]
    # one alert per anomaly row, except the late-data users: one grouped alert per day
    late_rows = [r for r in got_rows if r["kind"] == "late_data_user"]
    late_alerts = [a for a in alerts if a["kind"] == "late_data_user"]
    assert {a["dedup_key"] for a in alerts if a["kind"] != "late_data_user"} == {
        f"anomaly:{r['anomaly_id']}" for r in got_rows if r["kind"] != "late_data_user"
    }
    assert late_alerts and sum(a["details"]["users"] for a in late_alerts) == len(late_rows)
    named = set().union(*(a["details"]["top_users"] for a in late_alerts))
    assert named <= {r["entity"] for r in late_rows}


def test_alertmanager_sends_one_notification_per_group_not_one_per_anomaly(
    spark, e2e, alertmanager_hook
):
    manager, hook = alertmanager_hook
    rows = _read(spark, e2e, "anomalies")
    posted = [json.loads(line) for line in (e2e["root"] / "alerts.jsonl").read_text().splitlines()]

    def groups() -> list[dict]:
        with urllib.request.urlopen(f"{manager.url}/api/v2/alerts/groups", timeout=5) as answer:
            return [g for g in json.load(answer) if g["alerts"]]

    # Alertmanager holds every alert the job posted, in groups of kind and service
    deadline = time.monotonic() + 30
    while sum(len(g["alerts"]) for g in groups()) < len(posted) and time.monotonic() < deadline:
        time.sleep(0.5)
    held = groups()
    assert sum(len(g["alerts"]) for g in held) == len(posted)
    assert all(set(g["labels"]) <= {"kind", "service"} for g in held)
    # the stated bound: one message per kind+service group and per channel of its receiver
    # (the shipped routes: Slack and/or the webhook; e-mail has no server here), once
    # group_wait is over (and no update inside the group_interval)
    config = yaml.safe_load(Path(manager.config_file).read_text())
    channels = {
        receiver["name"]: {
            "/slack": len(receiver.get("slack_configs", [])),
            "/webhook": len(receiver.get("webhook_configs", [])),
        }
        for receiver in config["receivers"]
    }
    # at most one message per group and channel; at least one for every group with an alert
    # not inhibited (a critical alert inhibits the warnings of its kind and service, which are
    # a group of their own when their route differs: they may have been sent before)
    live = [g for g in held if any(a["status"]["state"] == "active" for a in g["alerts"])]

    def expected(among: list[dict]) -> dict[str, int]:
        return {
            path: sum(channels[g["receiver"]["name"]][path] for g in among)
            for path in ("/slack", "/webhook")
        }

    def sent() -> dict[str, int]:
        return {path: sum(1 for r in hook.requests if r["path"] == path) for path in expected([])}

    # the last groups were created by the last alerts: wait out their group_wait (a loaded
    # machine delays it), then a little more for anything extra
    least, most = expected(live), expected(held)
    deadline = time.monotonic() + 60
    while any(sent()[p] < least[p] for p in least) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(5)
    assert all(least[p] <= sent()[p] <= most[p] for p in least), (least, sent(), most)
    notifications = [r for r in hook.requests if r["path"] in ("/slack", "/webhook")]
    # this dataset: ~15 groups that notify, ~20 messages, against one page per anomaly row before
    assert 0 < len(notifications) <= 30 and len(rows) >= 5 * len(notifications)
    # and grouping lost nothing: every anomaly is still a row of its own
    assert Counter(r["kind"] for r in rows)["late_data_user"] > len(notifications)


def test_rerunning_without_new_data_changes_nothing(spark, e2e):
    before = {t: read_table(spark, e2e["settings"], t).count() for t in ("events", "response_time")}
    run_pipeline(
        spark,
        e2e["settings"],
        RunOptions(available_now=True),
        TotalsRegistry(),
        build_alert_sink("log"),
    )
    after = {t: read_table(spark, e2e["settings"], t).count() for t in ("events", "response_time")}
    assert before == after
