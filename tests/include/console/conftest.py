"""A small, hand-built day of tables, status files and reports for the console tests.

The rows are written with pyarrow in the layout the job writes (``<table>/<date column>=D/...``),
plus decoys the console must skip (``_staging``, ``_commits``, another day, an hour before the
last final window). The values every test expects are worked out by hand in the test modules.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from logstream.config import Settings
from tests.include.reports.hostile import HOSTILE

DAY = date(2026, 12, 1)
SCRIPT, IMG = HOSTILE[0], HOSTILE[1]
UTC_TIME = pa.timestamp("us", tz="UTC")


def at(hour: int, minute: int, second: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def write(folder: Path, columns: dict[str, tuple[pa.DataType, list]], name: str = "part-0") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: pa.array(v, type=t) for k, (t, v) in columns.items()})
    pq.write_table(table, folder / f"{name}.parquet")


def metric_tables(data: Path) -> None:
    folder = data / "error_rate" / f"window_date={DAY}"
    write(
        folder,
        {
            "window_start": (UTC_TIME, [at(10, 0), at(10, 1), at(10, 0)]),
            "window_end": (UTC_TIME, [at(10, 1), at(10, 2), at(10, 2)]),
            "service": (pa.string(), ["api", "api", SCRIPT]),
            "total_requests": (pa.int64(), [60, 120, 30]),
            "error_count": (pa.int64(), [6, 0, 3]),
            "error_rate": (pa.float64(), [10.0, 0.0, 10.0]),
        },
    )
    # a half-published batch and another day: never shown
    for decoy in (
        data / "error_rate" / "_staging" / "w" / "1" / f"window_date={DAY}",
        data / "error_rate" / f"window_date={DAY + timedelta(days=1)}",
    ):
        write(
            decoy,
            {
                "window_start": (UTC_TIME, [at(10, 5)]),
                "window_end": (UTC_TIME, [at(10, 6)]),
                "service": (pa.string(), ["ghost"]),
                "total_requests": (pa.int64(), [999]),
                "error_count": (pa.int64(), [0]),
                "error_rate": (pa.float64(), [0.0]),
            },
        )
    write(
        data / "response_time" / f"window_date={DAY}",
        {
            "window_start": (UTC_TIME, [at(10, 0), at(10, 1), at(10, 0)]),
            "window_end": (UTC_TIME, [at(10, 1), at(10, 2), at(10, 2)]),
            "service": (pa.string(), ["api", "api", SCRIPT]),
            "request_count": (pa.int64(), [60, 120, 30]),
            "p50_response_time": (pa.float64(), [0.1, 0.2, 0.3]),
            "p95_response_time": (pa.float64(), [0.5, 0.6, 0.7]),
            "p99_response_time": (pa.float64(), [0.9, 1.0, 1.1]),
        },
    )


def bronze(data: Path) -> None:
    hour10 = data / "events" / f"event_date={DAY}" / "event_hour=10"
    write(
        hour10,
        {
            # 10:01:59 is inside the last final window: not live
            "event_time": (
                UTC_TIME,
                [at(10, 1, 59), at(10, 2, 10), at(10, 2, 20), at(10, 2, 30), at(10, 3, 0)],
            ),
            "service": (pa.string(), ["api", "api", "api", "api", IMG]),
            "status_code": (pa.int32(), [500, 200, 500, 404, 200]),
            "response_time": (pa.float64(), [9.0, 0.1, 0.2, 0.3, 0.4]),
            "path": (pa.string(), [SCRIPT, IMG, "/", "/", SCRIPT]),
            "user_agent": (pa.string(), [IMG, SCRIPT, "ua", "ua", IMG]),
            "user_id": (pa.string(), [SCRIPT, IMG, "u1", "u2", SCRIPT]),
        },
    )
    # a commit marker folder and an earlier hour: never read for the live windows
    (data / "events" / "_commits" / "w").mkdir(parents=True)
    write(
        data / "events" / f"event_date={DAY}" / "event_hour=9",
        {
            "event_time": (UTC_TIME, [at(9, 30)]),
            "service": (pa.string(), ["ghost"]),
            "status_code": (pa.int32(), [200]),
            "response_time": (pa.float64(), [1.0]),
        },
    )
    write(
        data / "late_events" / f"event_date={DAY}",
        {
            "service": (pa.string(), ["api", "api", SCRIPT]),
            "lateness_ms": (pa.int64(), [1000, 3000, 500]),
            "user_id": (pa.string(), [SCRIPT, "u1", IMG]),
        },
    )


def findings_tables(data: Path) -> None:
    write(
        data / "anomalies" / f"window_date={DAY}",
        {
            "anomaly_id": (pa.string(), ["a1", "a2", "a3"]),
            "kind": (pa.string(), ["error_rate_spike", "ddos_suspect", "late_data_user"]),
            "entity": (pa.string(), ["api", IMG, SCRIPT]),
            "window_start": (UTC_TIME, [at(10, 1), at(10, 0), at(0, 0)]),
            "window_end": (UTC_TIME, [at(10, 2), at(10, 1), at(0, 0, day=DAY + timedelta(1))]),
            "observed": (pa.float64(), [10.0, 900.0, 12.0]),
            "threshold": (pa.float64(), [5.0, 500.0, 10.0]),
            "baseline": (pa.float64(), [0.0, None, None]),
            "severity": (pa.string(), ["warning", "critical", "warning"]),
            "detail": (pa.string(), ["error rate 10.0% after 0.0%", f"from {IMG}", SCRIPT]),
        },
    )
    raw = [
        json.dumps({"path": SCRIPT, "user_agent": IMG}).encode()[:-1],  # cut JSON
        b"{not json",
        b"{also not",
        IMG.encode() * 2000,  # oversized
    ]
    write(
        data / "quarantine" / f"quarantine_date={DAY}",
        {
            "reason": (pa.string(), ["malformed_json"] * 3 + ["oversized"]),
            "detail": (pa.string(), [SCRIPT, "x", "y", "4000 bytes"]),
            "raw_value": (pa.binary(), raw),
            "raw_length": (pa.int32(), [len(r) for r in raw]),
            "kafka_topic": (pa.string(), ["logs"] * 4),
            "kafka_partition": (pa.int32(), [0, 1, 2, 0]),
            "kafka_offset": (pa.int64(), [5, 6, 7, 8]),
            "kafka_timestamp": (UTC_TIME, [at(10, 0)] * 4),
        },
    )


def report_files(settings: Settings) -> None:
    data = Path(settings.data_root)
    write(
        data / "reconciliation_report" / f"report_date={DAY}",
        {
            "family": (pa.string(), ["error_rate", "error_rate", "response_time"]),
            "change": (pa.string(), ["different", "missing_in_stream", "different"]),
            "window_start": (UTC_TIME, [at(10, 1), at(10, 3), at(10, 1)]),
            "window_end": (UTC_TIME, [at(10, 2), at(10, 4), at(10, 2)]),
            "entity": (pa.string(), ["api", SCRIPT, "api"]),
            "count_column": (pa.string(), ["total_requests", "total_requests", "request_count"]),
            "streamed_count": (pa.int64(), [120, None, 120]),
            "reconciled_count": (pa.int64(), [121, 4, 121]),
            "changed_columns": (pa.list_(pa.string()), [["total_requests"], [], ["p50"]]),
        },
    )
    write(
        data / "latency_report" / f"report_date={DAY}",
        {
            "report_hour": (UTC_TIME, [at(9, 0), at(10, 0)]),
            "scope": (pa.string(), ["service", "service"]),
            "service": (pa.string(), [IMG, "api"]),
            "stage": (pa.string(), ["end_to_end", "end_to_end"]),
            "unit": (pa.string(), ["ms", "ms"]),
            "count": (pa.int64(), [10, 20]),
            "p50": (pa.float64(), [100.0, 200.0]),
            "p95": (pa.float64(), [150.0, 250.0]),
            "p99": (pa.float64(), [190.0, 290.0]),
            "max": (pa.float64(), [199.0, 299.0]),
            "avg": (pa.float64(), [110.0, 210.0]),
            "alert_level": (pa.string(), ["OK", "WARNING"]),
        },
    )
    reports = Path(settings.reports_dir)
    (reports / "reconciliation").mkdir(parents=True)
    (reports / "reconciliation" / f"{DAY}.json").write_text(
        json.dumps({"summary": f"2 windows corrected ({SCRIPT})", "totals": {"windows": 3}})
    )
    (reports / "latency").mkdir()
    (reports / "latency" / f"{DAY}T10.html").write_text("<html>hour 10</html>")
    (reports / "latency" / f"{DAY}T09.html").write_text("<html>hour 9</html>")
    (reports / "latency" / f"{DAY + timedelta(1)}T00.html").write_text("<html>next day</html>")
    docs = reports / "data_docs"
    (docs / "validations").mkdir(parents=True)
    (docs / "index.html").write_text("<html>docs</html>")
    (docs / "validations" / "events.html").write_text("<html>suite</html>")
    (reports / "quality").mkdir()
    (reports / "quality" / f"{DAY}.json").write_text(
        json.dumps(
            {
                "day": DAY.isoformat(),
                "success": False,
                "suites": [
                    {
                        "suite": "events",
                        "success": False,
                        "evaluated": 12,
                        "failures": [
                            {
                                "suite": "events",
                                "expectation": "expect_column_values_to_be_in_set",
                                "column": "service",
                                "observed": SCRIPT,
                            }
                        ],
                        "docs_page": (docs / "validations" / "events.html").as_uri(),
                    },
                    {
                        "suite": "anomalies",
                        "success": True,
                        "evaluated": 3,
                        "failures": [],
                        "docs_page": "file:///etc/passwd",
                    },
                ],
                "parameters": {},
                "data_docs_index": (docs / "index.html").as_uri(),
                "run_id": "manual__1",
            }
        )
    )


def status_files(settings: Settings) -> None:
    status = Path(settings.status_dir)
    status.mkdir(parents=True)
    (status / "logs.json").write_text(
        json.dumps(
            {
                "query": "logs",
                "state": "active",
                "batch_id": 41,
                "updated_at": "2026-12-01T10:04:50+00:00",
                "batch_duration_ms": 1500,
                "kafka_lag": 250,
                "watermark": "2026-12-01T10:00:00+00:00",
                "windows_final_through": "2026-12-01T10:02:00+00:00",
                "rows_dropped_by_watermark": 3,
                "exception": None,
            }
        )
    )
    (status / "user_events.json").write_text(
        json.dumps({"query": "user_events", "state": "failed", "exception": SCRIPT})
    )
    history = status / "history" / "logs"
    history.mkdir(parents=True)
    lines = [
        {"timestamp": "2026-12-01T09:30:00+00:00", "query": "logs", "batch_duration_ms": 9999},
        {
            "timestamp": "2026-12-01T10:04:00+00:00",
            "query": "logs",
            "batch_duration_ms": 1200,
            "kafka_lag": 300,
        },
        {
            "timestamp": "2026-12-01T10:04:30+00:00",
            "query": "logs",
            "batch_duration_ms": 1500,
            "kafka_lag": 250,
        },
    ]
    (history / f"{DAY}.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines) + "{cut"
    )
    supervisor = Path(settings.state_dir) / "supervisor"
    supervisor.mkdir()
    (supervisor / "restarts.json").write_text(
        json.dumps(
            {
                "restarts": [
                    {"at": at(9, 0).timestamp(), "reason": "stalled"},
                    {"at": at(10, 0).timestamp(), "reason": SCRIPT},
                ]
            }
        )
    )


@pytest.fixture(scope="module")
def console_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state = tmp_path_factory.mktemp("console-state")
    settings = Settings.load(env={}, state_dir=state)
    data = Path(settings.data_root)
    metric_tables(data)
    bronze(data)
    findings_tables(data)
    report_files(settings)
    status_files(settings)
    return settings
