"""Live traffic, soak-shaped (issue 16): the real streaming job under steady wall-clock traffic
finalizes window after window, survives a SIGKILL while a micro-batch lands bronze and another
while one writes final windows, and every table is still exactly once and equal to the
independent oracle.

1. a private topic on the suite's broker; the job (``jobs/stream_logs.py`` under spark-submit,
   its own process group) with 10 s and 20 s windows and 4 s and 8 s delays, so that a window is
   final every few seconds;
2. ``bench/live_load.py``'s Java sender at a steady rate for about 80 s, each record stamped
   with its send time (event time = wall clock), cycling seeded generator records: malformed
   ones, records hours late and records a few seconds late (late for the 4 s delays, on time for
   the 8 s ones, depending on the micro-batch they land in);
3. SIGKILL of the whole job at an instant when a micro-batch has bronze events staged but not
   committed, a restart on the same checkpoint while the traffic goes on; once the new process
   finalizes windows again, a second SIGKILL at an instant when a round has final windows
   staged in a metric table, and a second restart; then the broker stopped for 10 s and started
   again under the running job (which must not die, and must finalize windows again);
4. after the traffic, one record 35 s ahead of the clock moves the event-time high-water mark
   past every window of the traffic, so they are all final; the job is stopped with SIGTERM.

Asserted, with no timing: every Kafka record is in ``events`` or ``quarantine`` exactly once
(distinct partition and offset), nothing uncommitted is visible; each event's lateness and the
late-events table follow from the micro-batches alone; every metric table equals the oracle
(:mod:`tests.oracle`) over the bronze events on time for its delay, for exactly the windows
that are final.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.live_load import LiveLoad, write_templates
from logstream.kafka.admin import ensure_topics
from logstream.timeutil import parse_iso
from tests import oracle
from tests.live_traffic_support import (
    StreamJob,
    clock_record,
    compare_rows,
    end_offsets,
    read_rows,
    recompute_lateness,
    send_record,
    shorten_lateness,
    staged_batches,
    uncommitted_traces,
    wait_for,
)

pytestmark = pytest.mark.slow

TOPIC = "live-logs"
RATE = 500  # records per second
TRAFFIC_S = 80  # at least this long, and at least LIVE_AFTER_RESTART_S after the last restart
LIVE_AFTER_RESTART_S = 15  # windows finalized live by the last process
KILL_AFTER_BATCH = 2  # the first SIGKILL hits a later micro-batch than this one
BROKER_DOWN_S = 10  # the broker's outage after the second restart
#: family -> (window, watermark delay) in seconds: a window is final every few seconds
SPANS = {
    "response_time": (10, 4),
    "error_rate": (10, 4),
    "sla": (10, 4),
    "service_popularity": (10, 4),
    "system_health": (10, 4),
    "ip_requests": (10, 4),
    "processing_latency": (10, 8),
    "ip_patterns": (20, 8),
    "user_activity": (20, 8),
}
WINDOWS = {
    name: {"window": f"{window} seconds", "delay": f"{delay} seconds"}
    for name, (window, delay) in SPANS.items()
}
SECONDS_LATE = (5.0, 7.0, 9.0, 12.0)  # lags of the shortened late templates
CLOCK_AHEAD = timedelta(seconds=35)  # > the longest window + the longest delay

#: table -> (oracle function, key columns, exact, approximate, set-valued columns)
TABLES = {
    "response_time": (
        oracle.response_time_per_service,
        ("service",),
        ("request_count", "min_response_time", "max_response_time"),
        ("avg_response_time", "stddev_response_time"),
        (),
    ),
    "error_rate": (
        oracle.error_rate_per_service,
        ("service",),
        ("total_requests", "error_count"),
        ("error_rate",),
        (),
    ),
    "sla": (
        oracle.sla_per_service,
        ("service",),
        ("total_requests", "fast_requests", "successful_requests"),
        ("availability_pct", "performance_pct"),
        (),
    ),
    "service_popularity": (
        oracle.service_popularity,
        ("service",),
        ("request_count", "unique_users"),
        (),
        (),
    ),
    "system_health": (
        oracle.system_health,
        (),
        ("total_requests", "active_services", "active_users", "error_count", "health_score"),
        ("avg_response_time", "error_rate"),
        (),
    ),
    "ip_requests": (
        oracle.ip_patterns,
        ("ip_address",),
        ("request_count", "unique_users"),
        (),
        (),
    ),
    "processing_latency": (
        oracle.processing_latency,
        ("service",),
        ("record_count", "max_latency_ms", "min_latency_ms", "alert_level"),
        ("avg_latency_ms",),
        (),
    ),
    "ip_patterns": (
        oracle.ip_patterns,
        ("ip_address",),
        ("request_count", "unique_users"),
        (),
        ("services_used",),
    ),
    "user_activity": (
        oracle.user_activity,
        ("user_id",),
        ("activity_count", "distinct_services"),
        ("avg_response_time",),
        (),
    ),
}
EVENT_COLUMNS = (
    "event_id", "event_time", "service", "ip_address", "user_id", "response_time",
    "status_code", "kafka_partition", "kafka_offset", "processing_time", "lateness_ms",
)  # fmt: skip


def _status(run) -> dict:
    try:
        return json.loads((Path(run.status_dir) / "ingest_logs.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _final_through(run) -> datetime | None:
    """The earliest end of the last final window over the family groups (None before any)."""
    through = _status(run).get("windows_final_through") or {}
    stamps = [parse_iso(value) for value in through.values() if value]
    return min(stamps) if stamps else None


@pytest.fixture(scope="module")
def live_run(kafka_broker, settings, tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("live")
    run = settings.replace(
        state_dir=str(root / "state"),
        data_root=str(root / "data"),
        checkpoint_root=str(root / "checkpoints"),
        status_dir=str(root / "status"),
        logs_topic=TOPIC,
        user_events_topic="live-user-events",
        windows=WINDOWS,
        trigger_interval="1 second",
    )
    ensure_topics(kafka_broker.bootstrap, [TOPIC], run.topic_partitions)
    templates = root / "templates.txt"
    write_templates(templates, 20_000, seed=16, topic=TOPIC, max_record_bytes=run.max_record_bytes)
    assert shorten_lateness(templates, SECONDS_LATE) > 50
    load = LiveLoad(run, root, templates, TOPIC)
    job = StreamJob(run, root / "job.log", root / "spark-local")
    data = Path(run.data_root)
    metric_tables = [data / name for name in TABLES]
    try:
        load.start()
        load.wait_started()
        load.set_rate(RATE)
        started = time.time()
        job.start()
        wait_for(
            lambda: _final_through(run) and _status(run).get("batch_id", -1) >= KILL_AFTER_BATCH,
            300,
            "the job's first micro-batches",
            job,
        )
        kills = []
        for what, staged in (
            # a micro-batch landing bronze (staged in events, not committed)
            ("landing", lambda: staged_batches(data / "events")),
            # a micro-batch writing final windows (staged in a metric table, not committed)
            ("finalizing", lambda: [b for t in metric_tables for b in staged_batches(t)]),
        ):
            batches = wait_for(staged, 120, f"a micro-batch {what}", job, every=0.005)
            job.kill()
            killed = datetime.now(UTC)
            kills.append((what, batches, killed))
            job.start()
            # the new process restores its open windows from bronze, catches up, and
            # finalizes windows under live traffic again
            wait_for(
                lambda killed=killed: (
                    (_final_through(run) or killed) > killed + timedelta(seconds=10)
                ),
                300,
                f"windows finalized after the restart that followed the SIGKILL while {what}",
                job,
            )
        # the broker goes away under the running job and the sender, and comes back on the
        # same ports and log folder: the job waits and resumes by itself
        kafka_broker.stop()
        down = datetime.now(UTC)
        time.sleep(BROKER_DOWN_S)
        kafka_broker.start()
        wait_for(
            lambda: (_final_through(run) or down) > down + timedelta(seconds=10),
            300,
            "windows finalized after the broker came back (the job must not die meanwhile)",
            job,
        )
        caught_up = time.time()
        time.sleep(max(LIVE_AFTER_RESTART_S, TRAFFIC_S - (caught_up - started)))
        stats = load.stop()
        traffic_s = time.time() - started
        assert stats.done and stats.failed == 0 and stats.acked == stats.sent, stats

        clock = datetime.now(UTC).replace(microsecond=0) + CLOCK_AHEAD
        send_record(kafka_broker.bootstrap, TOPIC, *clock_record(clock))
        offsets = end_offsets(kafka_broker.bootstrap, TOPIC)

        def drained() -> bool:
            status = _status(run)
            totals = status.get("totals", {})
            landed = totals.get("valid", 0) + totals.get("quarantined", 0)
            through = status.get("windows_final_through") or {}
            # the finalizer's rounds run beside the landings: wait for the round that finalized
            # through the clock record too (the status file shows the committed rounds)
            return (
                landed >= sum(offsets.values())
                and parse_iso(status.get("max_event_time")) == clock
                and bool(through)
                and all(
                    parse_iso(value) == clock - timedelta(seconds=SPANS[group.split("+")[0]][1])
                    for group, value in through.items()
                )
            )

        wait_for(drained, 180, "the job to land every record and finalize through it", job)
        status = _status(run)
        stopped_cleanly = job.stop()
    finally:
        load.kill()
        job.stop()
        shutil.rmtree(root / "spark-local", ignore_errors=True)  # what the SIGKILLs left
    print(
        f"live traffic: {stats.sent:,} records in {traffic_s:.0f}s; "
        + "; ".join(
            f"SIGKILL {t.timestamp() - started:.0f}s in, {what} {b}" for what, b, t in kills
        )
        + f"; caught up {caught_up - started:.0f}s in; {time.time() - started:.0f}s in all"
    )
    return {
        "data": data,
        "offsets": offsets,
        "clock": clock,
        "kills": [killed for _, _, killed in kills],
        "status": status,
        "stopped_cleanly": stopped_cleanly,
    }


@pytest.fixture(scope="module")
def events(live_run):
    return read_rows(live_run["data"] / "events", EVENT_COLUMNS)


def test_every_record_is_in_events_or_quarantine_exactly_once(live_run, events):
    quarantined = read_rows(live_run["data"] / "quarantine", ("kafka_partition", "kafka_offset"))
    assert quarantined, "the traffic must hold malformed records"
    landed = [(row["kafka_partition"], row["kafka_offset"]) for row in events + quarantined]
    produced = {(p, offset) for p, end in live_run["offsets"].items() for offset in range(end)}
    assert len(landed) == len(set(landed)), "a record landed twice"
    assert set(landed) == produced, f"missing {sorted(produced - set(landed))[:5]}"


def test_sigterm_stops_the_job_cleanly(live_run):
    assert live_run["stopped_cleanly"]


def test_nothing_uncommitted_is_visible(live_run):
    tables = ("events", "quarantine", "late_events", "anomalies", *TABLES)
    traces = [trace for t in tables for trace in uncommitted_traces(live_run["data"] / t)]
    assert traces == []


def test_lateness_and_late_events_follow_from_the_batches(live_run, events):
    recomputed = recompute_lateness(events)
    assert {row["event_id"]: row["lateness_ms"] for row in events} == recomputed
    shortest = min(delay for _, delay in SPANS.values()) * 1000
    want = {
        event_id: {name for name, (_, delay) in SPANS.items() if lateness > delay * 1000}
        for event_id, lateness in recomputed.items()
        if lateness is not None and lateness > shortest
    }
    got = read_rows(live_run["data"] / "late_events", ("event_id", "late_for"))
    assert len(got) == len({row["event_id"] for row in got}), "a late event was stored twice"
    assert {row["event_id"]: set(row["late_for"]) for row in got} == want
    # the traffic held events late for the 4 s delays and on time for the 8 s ones, and events
    # minutes to hours late
    assert any(0 < len(late_for) < len(SPANS) for late_for in want.values())
    assert any(recomputed[event_id] > 600_000 for event_id in want)
    assert live_run["status"]["totals"]["late"] == len(want)


@pytest.mark.parametrize("table", list(TABLES))
def test_final_windows_match_the_oracle(live_run, events, table):
    window_s, delay_s = SPANS[table]
    compute, keys, exact, approx, sets = TABLES[table]
    lateness = recompute_lateness(events)
    on_time = [
        row
        for row in events
        if lateness[row["event_id"]] is None or lateness[row["event_id"]] <= delay_s * 1000
    ]
    # the first micro-batch starts every family with the windows that hold its events; the
    # last one's high-water mark (the clock record) minus the delay ends the final windows
    first_batch = min(row["processing_time"] for row in events)
    starts_after = min(row["event_time"] for row in events if row["processing_time"] == first_batch)
    high_water = max(row["event_time"] for row in events)
    assert high_water == live_run["clock"]
    final_through = high_water - timedelta(seconds=delay_s)
    want = [
        row
        for row in compute(on_time, window=window_s)
        if starts_after < row["window_end"] <= final_through
    ]
    columns = (*keys, "window_start", *exact, *approx, *sets) + (
        ("p50_response_time", "p95_response_time", "p99_response_time")
        if table == "response_time"
        else ()
    )
    got = read_rows(live_run["data"] / table, columns)
    pairs = compare_rows(table, got, want, (*keys, "window_start"), exact, approx, sets)
    # windows finalized before the first SIGKILL and after the last one
    ends = sorted({row["window_end"] for row in want})
    assert len(ends) >= 5, ends
    assert ends[0] < min(live_run["kills"]) and max(live_run["kills"]) < ends[-1]
    if table == "response_time":
        for key, (got_row, want_row) in pairs.items():
            for p, column in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
                values = want_row["response_times"]
                assert oracle.percentile_rank_ok(values, p, got_row[f"{column}_response_time"]), (
                    key,
                    column,
                )
    # the status file agrees: every family group is final through high-water mark - delay
    through = live_run["status"]["windows_final_through"]
    group = next(name for name in through if table in name.split("+"))
    assert parse_iso(through[group]) == final_through
