"""The ingestion handler (logstream.stream.batch) driven with static frames on a real local Spark.

No Kafka and no streaming query: each micro-batch is a hand-made frame of Kafka records, parsed
by the pipeline's own parse and handed to :class:`IngestBatchHandler` with a batch id and an
injected processing time. Five steps over one data root, each followed by a snapshot of every
table:

1. ``first``: batch 0 on a new checkpoint;
2. ``second``: batch 1, with late rows;
3. ``replayed``: batch 1 again on the same handler (Spark re-running a failed batch);
4. ``new_process_replayed``: batch 1 again on a new handler (a process that died after writing
   batch 1, before Spark committed it);
5. ``restarted``: batch 2 on another new handler (a restart that resumes the checkpoint).

The finalizer's rounds run inline after each landing (``background=False``): one round per batch
here, so round 3 is batch 2's. A second run over its own data root (``cut_short``) fails batch 2's
round in the middle of its table writes and replays batch 2 in a new process, which must run the
round again exactly as planned.

Two families with different delays: ``error_rate`` (1-minute windows, 5 minutes) and
``ip_requests`` (1-minute windows, 10 minutes here). Every expected row below is counted by hand
from the records; times are 2026-03-02 UTC.

Batch 0, high-water mark 10:15:30: windows are final through 10:10:30 (error_rate) and 10:05:30
(ip_requests). Batch 1 lands with lateness measured from 10:15:30, and moves the mark to 10:17;
10:05:10 is 10m20s behind (late for both families), 10:05:40 is 9m50s behind (late for
error_rate only), so the ip_requests window 10:05-10:06 counts the second only. Batch 2 is
measured from 10:17 and moves the mark to 10:23: its error_rate windows need rows of earlier
batches (10:15:30, 10:17:00), which the new handler reads back from bronze, and the error-rate
rule needs the window before 10:12 (10:11), which it reads back from the committed table (without
it, 10:12 would have nothing to compare with and no spike).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream import catalog, schemas
from logstream.alerts import Alert
from logstream.catalog import anomalies
from logstream.storage.tables import read_table
from logstream.stream.batch import IngestBatchHandler
from logstream.stream.pipelines import pipelines
from logstream.stream.status import TotalsRegistry

DAY = "2026-03-02"
KAFKA_TS = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
#: the processing time each batch id is given (what the offset log holds in production)
BATCH_TIME = {0: "10:20:00", 1: "10:21:00", 2: "10:25:00"}
FAMILIES = [
    catalog.FAMILY_BY_NAME["error_rate"],
    replace(catalog.FAMILY_BY_NAME["ip_requests"], delay="10 minutes"),
]
THRESHOLDS = anomalies.Thresholds(ddos_min_requests=1, late_user_min_events=1)


def at(clock: str) -> datetime:
    return datetime.fromisoformat(f"{DAY}T{clock}+00:00")


def log(clock: str, status: int, ip: str | None = None, user: str | None = None) -> bytes:
    record = {"timestamp": f"{DAY}T{clock}Z", "service": "api", "status_code": status}
    if ip:
        record["ip_address"] = ip
    if user:
        record["user_id"] = user
    return json.dumps(record).encode()


#: Kafka offset -> payload, per batch id (partition 0 of topic "logs")
BATCHES = {
    0: {
        0: log("10:00:10", 200, "10.0.0.1", "u1"),
        1: log("10:00:20", 200, "10.0.0.1", "u1"),
        2: log("10:01:10", 500, "10.0.0.2", "u2"),
        3: log("10:01:30", 200),
        4: log("10:15:30", 200),
        5: b'{"service": "api", "status_code": 200}',  # no timestamp: quarantined
    },
    1: {
        6: log("10:05:10", 200, "10.0.0.4", "u4"),
        7: log("10:05:40", 200, "10.0.0.4", "u4"),
        8: log("10:11:45", 200),
        9: log("10:17:00", 500),
    },
    2: {
        10: log("10:12:30", 500),
        11: log("10:17:30", 200),
        12: log("10:23:00", 200),
    },
}


class ListSink:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> bool:
        self.alerts.append(alert)
        return True


def anomaly_id(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


#: the columns each snapshot keeps, per table
COLUMNS = {
    "events": "event_id event_time lateness_ms processing_time event_date event_hour",
    "quarantine": "kafka_offset reason processing_time quarantine_date",
    "late_events": "event_id late_for",
    "error_rate": "window_start window_end service total_requests error_count error_rate",
    "ip_requests": "window_start ip_address request_count unique_users",
    "anomalies": "anomaly_id kind entity window_start window_end observed threshold baseline "
    "severity detail window_date",
}
_TEXT = {T.TimestampType: "HH:mm:ss", T.DateType: "yyyy-MM-dd"}


def snapshot(spark, run, handler, registry, sink) -> dict:
    """Every table's rows (times as UTC ``HH:mm:ss``, dates as ISO text, arrays as lists),
    sorted, the handler's published totals and the alerts it sent, after one step."""

    def rows(table: str) -> list[tuple]:
        frame = read_table(spark, run, table)
        columns = [
            F.date_format(name, _TEXT[kind]).alias(name)
            if (kind := type(frame.schema[name].dataType)) in _TEXT
            else F.col(name)
            for name in COLUMNS[table].split()
        ]
        return sorted(
            tuple(list(value) if isinstance(value, list) else value for value in row)
            for row in frame.select(*columns).collect()
        )

    return {
        **{table: rows(table) for table in COLUMNS},
        "totals": registry.get(handler.query_name),
        "alerts": [alert.dedup_key for alert in sink.alerts],
    }


def run_steps(spark, settings, root, plan, crash_in: str | None = None) -> dict[str, dict]:
    """Run ``plan`` (step, process, batch id) over one data root (batch id None: the process
    lands nothing and stops with a drain, as an ``--available-now`` run with nothing new in
    Kafka); a step whose process is
    ``crash_in``'s first letter has its finalizer's write of the table ``crash_in[2:]`` fail
    (``"c:error_rate"``), as a process killed in the middle of a round; its snapshot is taken
    after the failure."""
    run = settings.replace(
        data_root=str(root / "data"),
        checkpoint_root=str(root / "checkpoints"),
        status_dir=str(root / "status"),
    )
    pipeline = pipelines(run)["logs"]
    frames = {
        batch_id: spark.createDataFrame(
            [(None, value, "logs", 0, offset, KAFKA_TS) for offset, value in records.items()],
            schemas.KAFKA_RECORD,
        ).transform(pipeline.parse)
        for batch_id, records in BATCHES.items()
    }

    def handler() -> tuple[IngestBatchHandler, TotalsRegistry, ListSink]:
        registry, sink = TotalsRegistry(), ListSink()
        made = IngestBatchHandler(
            spark,
            run,
            pipeline,
            FAMILIES,
            THRESHOLDS,
            registry,
            sink,
            batch_time_ms=lambda batch_id: int(at(BATCH_TIME[batch_id]).timestamp() * 1000),
            query_id=lambda: "static0",
        )
        return made, registry, sink

    taken = {}
    handlers = {}
    for step, process, batch_id in plan:
        if process not in handlers:
            handlers[process] = handler()
            if crash_in and crash_in[0] == process:

                def killed(frame, number):
                    raise RuntimeError("killed in the middle of a round")

                handlers[process][0].finalizer.writers()[crash_in[2:]].write = killed
        made, registry, sink = handlers[process]
        sink.alerts.clear()
        try:
            if batch_id is None:  # an --available-now run that finds nothing new in Kafka
                made.stop(drain=True)
            else:
                made(frames[batch_id], batch_id)
        except RuntimeError as exc:
            if crash_in is None or "killed" not in str(exc):
                raise
        taken[step] = snapshot(spark, run, made, registry, sink)
        taken[step]["rounds"] = sorted(
            path.name for path in (root / "checkpoints/ingest_logs/logstream_final").iterdir()
        )
    return taken


@pytest.fixture(scope="module")
def steps(spark, settings, tmp_path_factory) -> dict[str, dict]:
    plan = [
        ("first", "a", 0),
        ("second", "a", 1),
        ("replayed", "a", 1),
        ("new_process_replayed", "b", 1),
        ("restarted", "c", 2),
    ]
    return run_steps(spark, settings, tmp_path_factory.mktemp("ingest-batch"), plan)


@pytest.fixture(scope="module")
def cut_short(spark, settings, tmp_path_factory) -> dict[str, dict]:
    """Batch 2 lands, then its round fails writing ``error_rate`` (after the plan, maybe after
    other tables); a new process replays batch 2 and runs the round again as planned."""
    plan = [("first", "a", 0), ("second", "a", 1), ("crashed", "c", 2), ("resumed", "d", 2)]
    root = tmp_path_factory.mktemp("ingest-cut-short")
    return run_steps(spark, settings, root, plan, crash_in="c:error_rate")


@pytest.fixture(scope="module")
def cut_short_then_drained(spark, settings, tmp_path_factory) -> dict[str, dict]:
    """As :func:`cut_short`, but batch 2 was committed before its round was cut short: the next
    process has nothing to land (Kafka holds nothing new) and stops with a drain."""
    plan = [("first", "a", 0), ("second", "a", 1), ("crashed", "c", 2), ("drained", "d", None)]
    root = tmp_path_factory.mktemp("ingest-cut-short-drained")
    return run_steps(spark, settings, root, plan, crash_in="c:error_rate")


# -- expected rows, by hand ---------------------------------------------------------------------

EVENTS_0 = [
    ("logs:0:0", "10:00:10", None, "10:20:00", DAY, 10),
    ("logs:0:1", "10:00:20", None, "10:20:00", DAY, 10),
    ("logs:0:2", "10:01:10", None, "10:20:00", DAY, 10),
    ("logs:0:3", "10:01:30", None, "10:20:00", DAY, 10),
    ("logs:0:4", "10:15:30", None, "10:20:00", DAY, 10),
]
EVENTS_1 = [  # lateness behind 10:15:30
    ("logs:0:6", "10:05:10", 620_000, "10:21:00", DAY, 10),
    ("logs:0:7", "10:05:40", 590_000, "10:21:00", DAY, 10),
    ("logs:0:8", "10:11:45", 225_000, "10:21:00", DAY, 10),
    ("logs:0:9", "10:17:00", -90_000, "10:21:00", DAY, 10),
]
EVENTS_2 = [  # lateness behind 10:17:00
    ("logs:0:10", "10:12:30", 270_000, "10:25:00", DAY, 10),
    ("logs:0:11", "10:17:30", -30_000, "10:25:00", DAY, 10),
    ("logs:0:12", "10:23:00", -360_000, "10:25:00", DAY, 10),
]
ERROR_RATE_0 = [
    ("10:00:00", "10:01:00", "api", 2, 0, 0.0),
    ("10:01:00", "10:02:00", "api", 2, 1, 50.0),
]
ERROR_RATE_1 = [("10:11:00", "10:12:00", "api", 1, 0, 0.0)]  # 10:05:40 is late for error_rate
ERROR_RATE_2 = [
    ("10:12:00", "10:13:00", "api", 1, 1, 100.0),
    ("10:15:00", "10:16:00", "api", 1, 0, 0.0),  # 10:15:30 from batch 0
    ("10:17:00", "10:18:00", "api", 2, 1, 50.0),  # 10:17:00 from batch 1, 10:17:30 from batch 2
]
IP_REQUESTS_0 = [("10:00:00", "10.0.0.1", 2, 1), ("10:01:00", "10.0.0.2", 1, 1)]
IP_REQUESTS_1 = [("10:05:00", "10.0.0.4", 1, 1)]  # 10:05:10 is late for ip_requests too

SPIKE_1001 = anomaly_id("error_rate_spike", "api", f"{DAY} 10:01:00")
DDOS = anomaly_id("ddos_suspect", "10.0.0.1", f"{DAY} 10:00:00")
LATE_USER = anomaly_id("late_data_user", "u4", DAY)
SPIKE_1012 = anomaly_id("error_rate_spike", "api", f"{DAY} 10:12:00")
SPIKE_1017 = anomaly_id("error_rate_spike", "api", f"{DAY} 10:17:00")
ANOMALIES_0 = [
    (SPIKE_1001, "error_rate_spike", "api", "10:01:00", "10:02:00", 50.0, 10.0, 0.0, "critical",
     "error rate 50.0% after 0.0% (+50.0 points)", DAY),
    (DDOS, "ddos_suspect", "10.0.0.1", "10:00:00", "10:01:00", 2.0, 1.0, None, "critical",
     "2 requests in 1 min from 1 users", DAY),
]  # fmt: skip
ANOMALIES_1 = [  # the arrival day of the late events (the processing time's UTC date)
    (LATE_USER, "late_data_user", "u4", "00:00:00", "00:00:00", 2.0, 1.0, None, "warning",
     "2 late events today (more than 1)", DAY),
]  # fmt: skip
ANOMALIES_2 = [
    (SPIKE_1012, "error_rate_spike", "api", "10:12:00", "10:13:00", 100.0, 10.0, 0.0,
     "critical", "error rate 100.0% after 0.0% (+100.0 points)", DAY),
    (SPIKE_1017, "error_rate_spike", "api", "10:17:00", "10:18:00", 50.0, 10.0, 0.0, "critical",
     "error rate 50.0% after 0.0% (+50.0 points)", DAY),
]  # fmt: skip


# -- the first batch ----------------------------------------------------------------------------


def test_a_first_batch_lands_its_events_without_lateness_at_the_injected_time(steps):
    assert steps["first"]["events"] == EVENTS_0
    assert steps["first"]["quarantine"] == [(5, "missing_timestamp", "10:20:00", DAY)]
    assert steps["first"]["late_events"] == []


def test_a_first_batch_writes_the_windows_its_rows_made_final(steps):
    assert steps["first"]["error_rate"] == ERROR_RATE_0
    assert steps["first"]["ip_requests"] == IP_REQUESTS_0


def test_a_first_batch_writes_and_alerts_the_anomalies_of_its_windows(steps):
    assert steps["first"]["anomalies"] == sorted(ANOMALIES_0)
    assert sorted(steps["first"]["alerts"]) == sorted([f"anomaly:{SPIKE_1001}", f"anomaly:{DDOS}"])


def test_the_handler_publishes_its_totals_and_watermarks(steps):
    assert steps["first"]["totals"] == {
        "valid": 5,
        "quarantined": 1,
        "late": 0,
        "errors": 1,  # the 500 at 10:01:10
        "response_time_sum_s": 0.0,  # no record carries a response time
        "response_time_count": 0,
        "anomalies": 2,  # the spike at 10:01 and the DDoS at 10:00
        "max_event_time": f"{DAY}T10:15:30Z",
        "watermark": f"{DAY}T10:10:30Z",
        "final_through": {"error_rate": f"{DAY}T10:10:30Z", "ip_requests": f"{DAY}T10:05:30Z"},
    }


# -- late rows ----------------------------------------------------------------------------------


def test_rows_behind_the_watermark_land_in_late_events_with_the_families_they_miss(steps):
    assert steps["second"]["events"] == sorted(EVENTS_0 + EVENTS_1)
    assert steps["second"]["late_events"] == [
        ("logs:0:6", ["error_rate", "ip_requests"]),
        ("logs:0:7", ["error_rate"]),
    ]


def test_late_rows_are_left_out_of_the_windows_of_the_families_they_are_late_for(steps):
    assert steps["second"]["error_rate"] == sorted(ERROR_RATE_0 + ERROR_RATE_1)
    assert steps["second"]["ip_requests"] == sorted(IP_REQUESTS_0 + IP_REQUESTS_1)


def test_a_user_with_too_many_late_events_is_an_anomaly_of_the_arrival_day(steps):
    assert steps["second"]["anomalies"] == sorted(ANOMALIES_0 + ANOMALIES_1)
    assert steps["second"]["alerts"] == [f"anomaly:{LATE_USER}"]
    assert steps["second"]["totals"]["late"] == 2


# -- exactly once -------------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["replayed", "new_process_replayed"])
def test_a_replayed_batch_doubles_nothing(steps, step):
    for table in COLUMNS:
        assert steps[step][table] == steps["second"][table], table
    assert steps[step]["totals"] == steps["second"]["totals"]


@pytest.mark.parametrize("step", ["replayed", "new_process_replayed"])
def test_a_replayed_batch_sends_the_same_alerts_again_under_the_same_dedup_keys(steps, step):
    assert steps[step]["alerts"] == [f"anomaly:{LATE_USER}"]


# -- restart ------------------------------------------------------------------------------------


def test_a_restarted_handler_resumes_the_high_water_mark_and_the_final_windows(steps):
    assert steps["restarted"]["events"] == sorted(EVENTS_0 + EVENTS_1 + EVENTS_2)
    assert steps["restarted"]["ip_requests"] == sorted(IP_REQUESTS_0 + IP_REQUESTS_1)
    assert steps["restarted"]["totals"] == {
        "valid": 12,
        "quarantined": 1,
        "late": 2,
        "errors": 3,  # 10:01:10, 10:17:00, 10:12:30
        "response_time_sum_s": 0.0,
        "response_time_count": 0,
        "anomalies": 5,  # 2 of batch 0, the late user of batch 1, the 2 spikes of batch 2
        "max_event_time": f"{DAY}T10:23:00Z",
        "watermark": f"{DAY}T10:18:00Z",
        "final_through": {"error_rate": f"{DAY}T10:18:00Z", "ip_requests": f"{DAY}T10:13:00Z"},
    }


def test_a_restarted_handler_restores_the_open_rows_from_bronze(steps):
    assert steps["restarted"]["error_rate"] == sorted(ERROR_RATE_0 + ERROR_RATE_1 + ERROR_RATE_2)


def test_a_restarted_handler_restores_the_rules_history_from_the_committed_table(steps):
    assert steps["restarted"]["anomalies"] == sorted(ANOMALIES_0 + ANOMALIES_1 + ANOMALIES_2)
    assert sorted(steps["restarted"]["alerts"]) == sorted(
        [f"anomaly:{SPIKE_1012}", f"anomaly:{SPIKE_1017}"]
    )


# -- a round cut short --------------------------------------------------------------------------


def test_a_round_cut_short_leaves_its_plan_without_a_commit_and_no_alert(cut_short):
    assert cut_short["crashed"]["rounds"][-1] == "3.plan"
    assert "3.done" not in cut_short["crashed"]["rounds"]
    assert cut_short["crashed"]["alerts"] == []
    # the landing of batch 2 is complete: its rows are in bronze
    assert cut_short["crashed"]["events"] == sorted(EVENTS_0 + EVENTS_1 + EVENTS_2)


def test_a_round_cut_short_is_run_again_as_planned_by_the_next_process(cut_short):
    resumed = cut_short["resumed"]
    assert "3.done" in resumed["rounds"]
    assert resumed["error_rate"] == sorted(ERROR_RATE_0 + ERROR_RATE_1 + ERROR_RATE_2)
    assert resumed["ip_requests"] == sorted(IP_REQUESTS_0 + IP_REQUESTS_1)
    assert resumed["anomalies"] == sorted(ANOMALIES_0 + ANOMALIES_1 + ANOMALIES_2)
    assert sorted(resumed["alerts"]) == sorted([f"anomaly:{SPIKE_1012}", f"anomaly:{SPIKE_1017}"])


def test_a_round_cut_short_is_run_again_by_a_drain_that_lands_nothing(cut_short_then_drained):
    drained = cut_short_then_drained["drained"]
    assert "3.done" in drained["rounds"]
    assert drained["events"] == sorted(EVENTS_0 + EVENTS_1 + EVENTS_2)  # nothing landed twice
    assert drained["error_rate"] == sorted(ERROR_RATE_0 + ERROR_RATE_1 + ERROR_RATE_2)
    assert drained["ip_requests"] == sorted(IP_REQUESTS_0 + IP_REQUESTS_1)
    assert drained["anomalies"] == sorted(ANOMALIES_0 + ANOMALIES_1 + ANOMALIES_2)
    assert sorted(drained["alerts"]) == sorted([f"anomaly:{SPIKE_1012}", f"anomaly:{SPIKE_1017}"])
