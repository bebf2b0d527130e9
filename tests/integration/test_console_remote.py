"""The console with its data on shared storage: ``data_root``, ``status_dir`` and ``reports_dir``
on a real S3 (s3proxy), started once for the module (the same tests on a real HDFS, whose start
takes longer: tests/cluster/test_console_remote.py). A small day is written there with pyarrow
and the Storage the jobs use; the pages' JSON twins, an HTML page and a served Data Docs file are
read through the FastAPI app, and every number is the one worked out by hand below.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from logstream.config import Settings
from logstream.console import health, tables
from logstream.console.app import URL_PREFIX, create_app
from logstream.runtime.hdfs import LocalHdfs
from logstream.runtime.s3 import LocalS3
from logstream.storage.fs import Storage
from tests.remote_storage import BUCKET

DAY = date(2026, 12, 1)
SCRIPT = "<script>alert(1)</script>"
TIME = pa.timestamp("us", tz="UTC")


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, minute, second, tzinfo=UTC)


def write_parquet(storage: Storage, location: str, columns: dict[str, tuple]) -> None:
    table = pa.table(
        {name: pa.array(values, type=kind) for name, (kind, values) in columns.items()}
    )
    filesystem, path = storage.arrow_filesystem(location)
    pq.write_table(table, path, filesystem=filesystem)


def _error_rate(services, starts, ends, totals, errors):
    return {
        "window_start": (TIME, starts),
        "window_end": (TIME, ends),
        "service": (pa.string(), services),
        "total_requests": (pa.int64(), totals),
        "error_count": (pa.int64(), errors),
        "error_rate": (pa.float64(), [100.0 * e / t for e, t in zip(errors, totals, strict=True)]),
    }


def write_day(storage: Storage, data: str, reports: str, status: str) -> None:
    """The day on shared storage, in the layout the jobs write, with decoys never shown."""
    rates = f"{data}/error_rate/window_date={DAY}"
    # final windows: api 10:00 (60 requests, 6 errors), api 10:01 (120, 0), web 10:00-10:02 (30, 3)
    write_parquet(
        storage,
        f"{rates}/part-0.parquet",
        _error_rate(
            ["api", "api"], [at(10, 0), at(10, 1)], [at(10, 1), at(10, 2)], [60, 120], [6, 0]
        ),
    )
    write_parquet(
        storage,
        f"{rates}/part-1.parquet",
        _error_rate(["web"], [at(10, 0)], [at(10, 2)], [30], [3]),
    )
    ghost = _error_rate(["ghost"], [at(10, 5)], [at(10, 6)], [999], [0])
    write_parquet(storage, f"{data}/error_rate/_staging/w/window_date={DAY}/part-9.parquet", ghost)
    # a task's uncommitted output and a hidden file inside the day's folder
    write_parquet(storage, f"{rates}/_temporary/0/part-9.parquet", ghost)
    write_parquet(storage, f"{rates}/.part-9.parquet", ghost)
    write_parquet(storage, f"{data}/error_rate/window_date=2026-12-02/part-0.parquet", ghost)
    write_parquet(
        storage,
        f"{data}/response_time/window_date={DAY}/part-0.parquet",
        {
            "window_start": (TIME, [at(10, 0), at(10, 1), at(10, 0)]),
            "window_end": (TIME, [at(10, 1), at(10, 2), at(10, 2)]),
            "service": (pa.string(), ["api", "api", "web"]),
            "request_count": (pa.int64(), [60, 120, 30]),
            "p50_response_time": (pa.float64(), [0.1, 0.2, 0.3]),
            "p95_response_time": (pa.float64(), [0.5, 0.6, 0.7]),
            "p99_response_time": (pa.float64(), [0.9, 1.0, 1.1]),
        },
    )
    # bronze: after the last final window (10:02), api has 2 events at 10:02 (one error) and
    # web one at 10:03; 10:01:59 is inside a final window, hour 9 is before it
    write_parquet(
        storage,
        f"{data}/events/event_date={DAY}/event_hour=10/part-0.parquet",
        {
            "event_time": (TIME, [at(10, 1, 59), at(10, 2, 10), at(10, 2, 20), at(10, 3)]),
            "service": (pa.string(), ["api", "api", "api", "web"]),
            "status_code": (pa.int32(), [500, 200, 500, 200]),
            "response_time": (pa.float64(), [9.0, 0.1, 0.2, 0.4]),
        },
    )
    write_parquet(
        storage,
        f"{data}/events/event_date={DAY}/event_hour=9/part-0.parquet",
        {
            "event_time": (TIME, [at(9, 30)]),
            "service": (pa.string(), ["ghost"]),
            "status_code": (pa.int32(), [200]),
            "response_time": (pa.float64(), [1.0]),
        },
    )
    write_parquet(
        storage,
        f"{data}/late_events/event_date={DAY}/part-0.parquet",
        {
            "service": (pa.string(), ["api", "api", "web"]),
            "lateness_ms": (pa.int64(), [1000, 3000, 500]),
        },
    )
    write_parquet(
        storage,
        f"{data}/anomalies/window_date={DAY}/part-0.parquet",
        {
            "anomaly_id": (pa.string(), ["a1"]),
            "kind": (pa.string(), ["error_rate_spike"]),
            "entity": (pa.string(), ["api"]),
            "window_start": (TIME, [at(10, 0)]),
            "window_end": (TIME, [at(10, 1)]),
            "observed": (pa.float64(), [10.0]),
            "threshold": (pa.float64(), [5.0]),
            "baseline": (pa.float64(), [0.0]),
            "severity": (pa.string(), ["warning"]),
            "detail": (pa.string(), [SCRIPT]),
        },
    )
    write_parquet(
        storage,
        f"{data}/quarantine/quarantine_date={DAY}/part-0.parquet",
        {
            "reason": (pa.string(), ["malformed_json", "malformed_json", "oversized"]),
            "detail": (pa.string(), ["cut", "cut", "big"]),
            "raw_value": (pa.binary(), [b"{not json", SCRIPT.encode(), b"x" * 10]),
            "raw_length": (pa.int32(), [9, len(SCRIPT), 10]),
            "kafka_topic": (pa.string(), ["logs"] * 3),
            "kafka_partition": (pa.int32(), [0, 1, 2]),
            "kafka_offset": (pa.int64(), [5, 6, 7]),
            "kafka_timestamp": (TIME, [at(10, 0)] * 3),
        },
    )
    write_parquet(
        storage,
        f"{data}/reconciliation_report/report_date={DAY}/part-0.parquet",
        {
            "family": (pa.string(), ["error_rate", "response_time"]),
            "change": (pa.string(), ["different", "different"]),
            "window_start": (TIME, [at(10, 1), at(10, 1)]),
            "window_end": (TIME, [at(10, 2), at(10, 2)]),
            "entity": (pa.string(), ["api", "api"]),
            "count_column": (pa.string(), ["total_requests", "request_count"]),
            "streamed_count": (pa.int64(), [120, 120]),
            "reconciled_count": (pa.int64(), [121, 121]),
            "changed_columns": (pa.list_(pa.string()), [["total_requests"], ["p50"]]),
        },
    )
    storage.write_text(
        f"{reports}/reconciliation/{DAY}.json",
        json.dumps({"summary": f"2 windows corrected {SCRIPT}", "totals": {"windows": 2}}),
    )
    storage.write_text(f"{reports}/latency/{DAY}T10.html", "<html>hour 10</html>")
    storage.write_text(f"{reports}/latency/2026-12-02T00.html", "<html>next day</html>")
    storage.write_text(f"{reports}/data_docs/index.html", "<html>the docs index</html>")
    storage.write_text(f"{reports}/data_docs/validations/events.html", "<html>events</html>")
    storage.write_text(
        f"{reports}/quality/{DAY}.json",
        json.dumps(
            {
                "day": DAY.isoformat(),
                "success": False,
                "suites": [
                    {
                        "suite": "events",
                        "success": False,
                        "evaluated": 12,
                        "failures": [],
                        "docs_page": f"{reports}/data_docs/validations/events.html",
                    },
                    {
                        "suite": "anomalies",
                        "success": True,
                        "evaluated": 3,
                        "failures": [],
                        "docs_page": "hdfs://elsewhere:8020/reports/data_docs/x.html",
                    },
                ],
                "parameters": {},
                "data_docs_index": f"{reports}/data_docs/index.html",
                "run_id": "manual__1",
            }
        ),
    )
    storage.write_text(
        f"{status}/logs.json",
        json.dumps({"query": "logs", "state": "active", "batch_id": 41, "kafka_lag": 250}),
    )
    history = [
        {"timestamp": "2026-12-01T10:04:00+00:00", "query": "logs", "batch_duration_ms": 1200},
        {"timestamp": "2026-12-01T10:04:30+00:00", "query": "logs", "batch_duration_ms": 1500},
    ]
    storage.write_text(
        f"{status}/history/logs/{DAY}/10.jsonl", "".join(json.dumps(r) + "\n" for r in history)
    )


@pytest.fixture(scope="module")
def kind() -> str:
    """The shared storage of this module: S3 (s3proxy starts in a few seconds);
    tests/cluster/test_console_remote.py runs the same tests on HDFS."""
    return "s3a"


@pytest.fixture(scope="module")
def remote(kind: str, settings: Settings, tmp_path_factory) -> Iterator[Settings]:
    """Settings whose data_root, reports_dir and status_dir are on a server of ``kind``, started
    for the module, with the day written there."""
    home = tmp_path_factory.mktemp(f"console-{kind}")
    server = (
        LocalHdfs(settings, home / "hdfs") if kind == "hdfs" else LocalS3(settings, home / "s3")
    )
    try:
        server.start()
        if isinstance(server, LocalS3):
            server.create_bucket(BUCKET)
            root = f"s3a://{BUCKET}/console"
        else:
            root = f"{server.url}/console"
        shared = settings.replace(
            **server.settings_overrides(),
            state_dir=home / "state",
            data_root=f"{root}/data",
            reports_dir=f"{root}/reports",
            status_dir=f"{root}/status",
        )
        write_day(Storage(shared), shared.data_root, shared.reports_dir, shared.status_dir)
        yield shared
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(remote: Settings) -> Iterator[TestClient]:
    # a signed-in user without Airflow's auth manager (tests/include/console checks that one)
    console = create_app(lambda: remote, user_dependency=lambda: object())
    parent = FastAPI()
    parent.mount(URL_PREFIX, console)
    yield TestClient(parent)
    console.state.warmer.stop()


def api(client: TestClient, path: str) -> dict:
    response = client.get(f"/logstream/api/{path}?day={DAY}")
    assert response.status_code == 200, response.text
    return response.json()


def test_windows_final_then_live(client):
    data = api(client, "windows")
    assert data["final_through"] == "2026-12-01T10:02:00+00:00"
    # api: 60 + 120 final + 2 live; web: 30 final + 1 live; ghosts never
    assert data["services"] == [
        {"service": "api", "requests": 182},
        {"service": "web", "requests": 31},
    ]
    api_windows, web_windows = data["windows"]["api"], data["windows"]["web"]
    assert api_windows["window_start"] == [
        "2026-12-01T10:00:00Z",
        "2026-12-01T10:01:00Z",
        "2026-12-01T10:02:00Z",
    ]
    assert api_windows["total_requests"] == [60, 120, 2]
    assert api_windows["error_rate"] == [10.0, 0.0, 50.0]
    assert api_windows["final"] == [True, True, False]
    assert (web_windows["total_requests"], web_windows["final"]) == ([30, 1], [True, False])


def test_late_anomalies_and_quarantine(client, remote):
    late = api(client, "late")
    assert late["total"] == 3
    assert late["services"] == [
        {"service": "api", "late_events": 2, "max_lateness_ms": 3000, "avg_lateness_ms": 2000.0},
        {"service": "web", "late_events": 1, "max_lateness_ms": 500, "avg_lateness_ms": 500.0},
    ]
    anomalies = api(client, "anomalies")
    assert anomalies["by_kind"] == {"error_rate_spike": 1}
    evidence = anomalies["anomalies"][0]["evidence"]
    assert evidence["metric_table"] == f"{remote.data_root}/error_rate/window_date={DAY}"
    assert evidence["bronze_table"] == f"{remote.data_root}/events"
    quarantine = api(client, "quarantine")
    assert quarantine["total"] == 3
    assert [(r["reason"], r["count"]) for r in quarantine["reasons"]] == [
        ("malformed_json", 2),
        ("oversized", 1),
    ]
    # the samples come from the files found through the cached key column
    assert sorted(s["raw"] for s in quarantine["reasons"][0]["samples"]) == sorted(
        ["{not json", SCRIPT]
    )


def test_reports_links_and_served_files(client):
    reconciliation = api(client, "reconciliation")
    assert reconciliation["summary"] == f"2 windows corrected {SCRIPT}"
    assert reconciliation["changed_windows"] == 2
    assert reconciliation["report_file"] == f"files/reconciliation/{DAY}.json"
    assert api(client, "latency")["pages"] == [
        {"hour": f"{DAY}T10", "link": f"files/latency/{DAY}T10.html"}
    ]
    result = api(client, "quality")["result"]
    assert result["data_docs_link"] == "files/data_docs/index.html"
    assert [s["docs_link"] for s in result["suites"]] == [
        "files/data_docs/validations/events.html",
        None,  # not under reports_dir
    ]
    served = client.get("/logstream/files/data_docs/index.html")
    assert served.status_code == 200 and served.text == "<html>the docs index</html>"
    assert served.headers["content-type"].startswith("text/html")
    for outside in ("files/data_docs/../quality/x.json", "files/status/logs.json"):
        assert client.get(f"/logstream/{outside}").status_code == 404
    page = client.get(f"/logstream/reports?day={DAY}")
    assert page.status_code == 200
    assert SCRIPT not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_health_from_shared_status_files(client, remote):
    response = client.get("/logstream/api/health")
    assert response.status_code == 200
    (logs,) = response.json()["queries"]
    assert (logs["query"], logs["batch_id"], logs["kafka_lag"]) == ("logs", 41, 250)
    now = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)
    series = health.pipeline_health(remote, now, hours=0.5)["series"]
    ms = int(datetime(2026, 12, 1, 10, 4, tzinfo=UTC).timestamp() * 1000)
    assert series["logs"]["batch_duration_ms"] == [[ms, 1200], [ms + 30_000, 1500]]


def test_later_views_read_only_new_files(remote, monkeypatch):
    """The memory cache and the disk copy work on shared storage: after a restart (caches
    cleared), only the file written since is read."""
    monkeypatch.setattr(tables, "PERSIST_AFTER_FILES", 2)
    storage = Storage(remote)
    folder = f"{remote.data_root}/late_events/event_date=2026-11-30"
    read: list[str] = []
    original = tables._read_file

    def recording(path: str, *args) -> pa.Table:
        read.append(os.path.basename(path))
        return original(path, *args)

    monkeypatch.setattr(tables, "_read_file", recording)

    def late(name: str, service: str, lateness: int) -> None:
        columns = {"service": (pa.string(), [service]), "lateness_ms": (pa.int64(), [lateness])}
        write_parquet(storage, f"{folder}/{name}.parquet", columns)

    def rows() -> list[tuple]:
        table = tables.read_day(
            remote, "late_events", date(2026, 11, 30), ("service", "lateness_ms")
        )
        return sorted(
            zip(table["service"].to_pylist(), table["lateness_ms"].to_pylist(), strict=True)
        )

    late("b-1", "api", 10)
    late("b-2", "web", 20)
    assert rows() == [("api", 10), ("web", 20)]
    assert sorted(read) == ["b-1.parquet", "b-2.parquet"]
    assert len(list(tables.cache_folder(remote).glob("*.arrow"))) == 1
    read.clear()
    assert rows() == [("api", 10), ("web", 20)]
    assert read == []  # from memory
    tables.CACHE.clear()  # as a new API server process
    late("b-3", "db", 30)
    assert rows() == [("api", 10), ("db", 30), ("web", 20)]
    assert read == ["b-3.parquet"]  # b-1 and b-2 from the disk copy
