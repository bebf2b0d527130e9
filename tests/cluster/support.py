"""What the cluster tests check and how they break the cluster: the stored tables against the
independent oracle (:mod:`tests.oracle`), the driver's JVM on its worker, the job's progress."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from logstream.config import Settings
from logstream.storage.tables import read_table
from logstream.supervisor.processes import process_info
from tests import oracle

#: Metric tables, their oracle, their delay (s) and the columns compared.
METRIC_TABLES = (
    ("error_rate", oracle.error_rate_per_service, 300, ("total_requests", "error_count")),
    ("sla", oracle.sla_per_service, 300, ("total_requests", "fast_requests")),
    ("system_health", oracle.system_health, 300, ("total_requests", "active_users")),
)


def ingest_totals(settings: Settings) -> dict:
    """The ``ingest_logs`` query's cumulative totals from its status file ({} before any)."""
    path = Path(settings.status_dir) / "ingest_logs.json"
    try:
        return json.loads(path.read_text()).get("totals", {})
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_until(what: str, check: Callable[[], object], timeout: float, poll: float = 1.0):
    """Poll ``check`` until it returns something truthy (returned); AssertionError naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(poll)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def driver_jvm(driver_id: str) -> int | None:
    """The pid of the JVM a worker started for ``driver_id`` (DriverWrapper), if it runs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        info = process_info(int(entry.name))
        if info is None or not info.alive:
            continue
        command = " ".join(info.cmdline)
        if "org.apache.spark.deploy.worker.DriverWrapper" in command and driver_id in command:
            return info.pid
    return None


def sigkill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


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
    assert len(found) == len({row["anomaly_id"] for row in found}), "duplicated anomalies"
    got_found = {(r["kind"], r["entity"], r["window_start"]) for r in found}
    assert got_found == want_found, (
        f"anomalies missing: {sorted(want_found - got_found)}; "
        f"unexpected: {sorted(got_found - want_found)}"
    )


def processes_in(folder: Path) -> list[int]:
    """Live processes whose working directory is ``folder`` (a driver's work folder: its JVM and
    the Python driver PythonRunner started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == folder:
                info = process_info(int(entry.name))
                if info is not None and info.alive:
                    found.append(info.pid)
        except OSError:
            continue
    return found
