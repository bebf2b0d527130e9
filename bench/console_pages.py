"""How fast the console's pages answer on a 5M-event day (the budget is 1 s per page).

    .venv/bin/python bench/console_pages.py [--events 5000000] [--batch-seconds 10] [--repeat 3]
        [--data FOLDER]

Builds a synthetic day with pyarrow (seeded) in the layout the streaming job writes: bronze
``events`` in 24 hour folders, one file per micro-batch and hour (``--batch-seconds`` apart, as the
stream's trigger makes them); one file per minute in ``error_rate`` and ``response_time`` (8
services); quarantine (1 %) and late events (2 %), one file per micro-batch; anomalies, a
reconciliation and a latency report, status files with a day of progress history. Then it times
every page (HTML, with its data) through the console app and prints one line per page: the first
view with nothing read before, the first view after a restart of the API server (an empty memory
cache; the console's copies under ``<state_dir>/console`` kept), and the median of ``--repeat``
later views. It fails (exit 1) when a page after a restart or a later view takes 1 s or more.
``--data`` keeps the day in FOLDER (built there once, reused by later runs with the same FOLDER),
to compare two versions of the console on the same files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DAY = datetime(2026, 12, 1, tzinfo=UTC)
SERVICES = np.array([f"service-{i}" for i in range(8)])
PATHS = np.array(["/", "/api/items", "/api/cart", "/login", "/static/app.js", "/search?q=x"])
AGENTS = np.array(["Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "python-requests/2.32"])
TIME = pa.timestamp("us", tz="UTC")
US_PER_DAY = 86_400 * 1_000_000


def _write(folder: Path, table: pa.Table, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"{name}.parquet")


def _events(rng: np.random.Generator, count: int) -> pa.Table:
    start = int(DAY.timestamp() * 1_000_000)
    times = np.sort(rng.integers(start, start + US_PER_DAY, count))
    status = rng.choice([200, 200, 200, 200, 201, 304, 404, 500, 503], count).astype(np.int32)
    return pa.table(
        {
            "event_id": pa.array([f"logs:0:{i}" for i in range(count)]),
            "event_time": pa.array(times, TIME),
            "level": pa.array(np.where(status >= 500, "ERROR", "INFO")),
            "service": pa.array(SERVICES[rng.integers(0, len(SERVICES), count)]),
            "ip_address": pa.array([f"10.0.{i % 250}.{i % 199}" for i in range(count)]),
            "user_id": pa.array([f"user-{i % 50_000}" for i in rng.integers(0, 1 << 30, count)]),
            "response_time": pa.array(rng.gamma(2.0, 0.05, count)),
            "status_code": pa.array(status),
            "path": pa.array(PATHS[rng.integers(0, len(PATHS), count)]),
            "user_agent": pa.array(AGENTS[rng.integers(0, len(AGENTS), count)]),
            "bytes_sent": pa.array(rng.integers(100, 50_000, count)),
        }
    )


def _by_batch(table: pa.Table, batch_seconds: int) -> list[tuple[int, pa.Table]]:
    """Split rows (sorted by event_time) into micro-batches of ``batch_seconds``."""
    micros = table["event_time"].cast(pa.int64()).to_numpy() - int(DAY.timestamp() * 1e6)
    batch = micros // (batch_seconds * 1_000_000)
    edges = np.flatnonzero(np.diff(batch)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(batch)]])
    return [(int(batch[s]), table.slice(s, e - s)) for s, e in zip(starts, ends, strict=True)]


def _windows(rng: np.random.Generator, root: Path) -> None:
    for minute in range(1440):
        start = DAY + timedelta(minutes=minute)
        n = len(SERVICES)
        totals = rng.integers(3000, 4000, n)
        errors = rng.integers(0, 300, n)
        common = {
            "window_start": pa.array([start] * n, TIME),
            "window_end": pa.array([start + timedelta(minutes=1)] * n, TIME),
            "service": pa.array(SERVICES),
        }
        _write(
            root / "error_rate" / "window_date=2026-12-01",
            pa.table(
                {
                    **common,
                    "total_requests": pa.array(totals),
                    "error_count": pa.array(errors),
                    "error_rate": pa.array(errors / totals * 100),
                }
            ),
            f"w-{minute}",
        )
        p50 = rng.uniform(0.05, 0.1, n)
        _write(
            root / "response_time" / "window_date=2026-12-01",
            pa.table(
                {
                    **common,
                    "request_count": pa.array(totals),
                    "p50_response_time": pa.array(p50),
                    "p95_response_time": pa.array(p50 * 3),
                    "p99_response_time": pa.array(p50 * 5),
                }
            ),
            f"w-{minute}",
        )


def build_day(root: Path, events: int, batch_seconds: int, seed: int = 17) -> dict[str, int]:
    """Write the synthetic day under ``root`` (the data_root); returns file counts per table."""
    rng = np.random.default_rng(seed)
    data = root / "data"
    bronze = _events(rng, events)
    counts = {"events": 0, "quarantine": 0, "late_events": 0}
    for batch, rows in _by_batch(bronze, batch_seconds):
        hour = batch * batch_seconds // 3600
        _write(data / "events" / "event_date=2026-12-01" / f"event_hour={hour}", rows, f"b-{batch}")
        counts["events"] += 1
        n = len(rows)
        quarantined = int(rng.binomial(n, 0.01))
        if quarantined:
            raw = [b'{"message": "cut' + b"x" * int(k) for k in rng.integers(50, 400, quarantined)]
            _write(
                data / "quarantine" / "quarantine_date=2026-12-01",
                pa.table(
                    {
                        "reason": pa.array(
                            rng.choice(
                                ["malformed_json", "missing_field", "bad_timestamp"], quarantined
                            )
                        ),
                        "detail": pa.array(["detail"] * quarantined),
                        "raw_value": pa.array(raw, pa.binary()),
                        "raw_length": pa.array([len(r) for r in raw], pa.int32()),
                        "kafka_topic": pa.array(["logs"] * quarantined),
                        "kafka_partition": pa.array([0] * quarantined, pa.int32()),
                        "kafka_offset": pa.array(range(quarantined), pa.int64()),
                        "kafka_timestamp": rows["event_time"].slice(0, quarantined),
                    }
                ),
                f"b-{batch}",
            )
            counts["quarantine"] += 1
        late = int(rng.binomial(n, 0.02))
        if late:
            sample = rows.slice(0, late).select(["service", "user_id", "event_time"])
            sample = sample.append_column(
                "lateness_ms", pa.array(rng.integers(300_000, 3_600_000, late))
            )
            _write(data / "late_events" / "event_date=2026-12-01", sample, f"b-{batch}")
            counts["late_events"] += 1
    _windows(rng, data)
    anomalies = 200
    starts = [DAY + timedelta(minutes=int(m)) for m in rng.integers(0, 1440, anomalies)]
    _write(
        data / "anomalies" / "window_date=2026-12-01",
        pa.table(
            {
                "anomaly_id": pa.array([f"a{i}" for i in range(anomalies)]),
                "kind": pa.array(rng.choice(["error_rate_spike", "ddos_suspect"], anomalies)),
                "entity": pa.array(SERVICES[rng.integers(0, len(SERVICES), anomalies)]),
                "window_start": pa.array(starts, TIME),
                "window_end": pa.array([s + timedelta(minutes=1) for s in starts], TIME),
                "observed": pa.array(rng.uniform(0, 100, anomalies)),
                "threshold": pa.array([20.0] * anomalies),
                "baseline": pa.array(rng.uniform(0, 10, anomalies)),
                "severity": pa.array(["warning"] * anomalies),
                "detail": pa.array(["spike"] * anomalies),
            }
        ),
        "a-0",
    )
    status = root / "status"
    history = status / "history" / "logs"
    history.mkdir(parents=True)
    lines = (
        json.dumps(
            {
                "timestamp": (DAY + timedelta(seconds=s)).isoformat(),
                "query": "logs",
                "batch_duration_ms": 900 + s % 700,
                "kafka_lag": s % 5000,
                "event_time_lag_ms": 2000,
            }
        )
        for s in range(0, 86_400, batch_seconds)
    )
    (history / "2026-12-01.jsonl").write_text("\n".join(lines) + "\n")
    (status / "logs.json").write_text(
        json.dumps({"query": "logs", "state": "active", "updated_at": DAY.isoformat()})
    )
    counts["error_rate"] = counts["response_time"] = 1440
    return counts


PAGES = (
    "health",
    "windows?day=2026-12-01",
    "windows?day=2026-12-01&service=service-3",
    "anomalies?day=2026-12-01",
    "quarantine?day=2026-12-01",
    "reports?day=2026-12-01",
    "api/windows?day=2026-12-01",
    "api/quarantine?day=2026-12-01",
    "api/late?day=2026-12-01",
)


def _client(root: Path):
    """A console app as the API server mounts it, signed in, in a fresh memory cache."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from logstream.config import Settings
    from logstream.console import tables
    from logstream.console.app import create_app

    tables.CACHE.clear()
    settings = Settings.load(env={}, state_dir=root)
    console = create_app(lambda: settings)
    console.dependency_overrides[get_user] = lambda: object()
    parent = FastAPI()
    parent.mount("/logstream", console)
    client = TestClient(parent)
    client.get("/logstream/api/health")  # imports, settings
    return client


def _get(client, page: str) -> float:
    began = time.perf_counter()
    response = client.get(f"/logstream/{page}")
    spent = time.perf_counter() - began
    if response.status_code != 200:
        raise SystemExit(f"{page}: HTTP {response.status_code}: {response.text[:300]}")
    return spent


def time_pages(root: Path, repeat: int) -> list[tuple[str, float, float, float]]:
    """Per page: the first view with nothing read before (no copy on disk either), the first
    view after a restart (memory cache empty, the console's disk copies kept), and the median
    of ``repeat`` later views."""
    shutil.rmtree(root / "console", ignore_errors=True)  # the console's disk copies
    client = _client(root)
    first, warm = {}, {}
    for page in PAGES:
        first[page] = _get(client, page)
        warm[page] = statistics.median(_get(client, page) for _ in range(repeat))
    client = _client(root)  # as after an API server restart
    restart = {page: _get(client, page) for page in PAGES}
    return [(page, first[page], restart[page], warm[page]) for page in PAGES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--batch-seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, help="keep the built day here and reuse it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="console-bench-") as folder:
        root = args.data or Path(folder)
        built = root / "built.json"
        if built.is_file():
            print(f"reusing the day in {root}: {built.read_text().strip()}")
        else:
            began = time.perf_counter()
            counts = build_day(root, args.events, args.batch_seconds)
            summary = f"{args.events:,} events; files: " + ", ".join(
                f"{k} {v:,}" for k, v in counts.items()
            )
            built.write_text(summary + "\n")
            print(f"built {summary} in {time.perf_counter() - began:.0f} s")
        worst = 0.0
        print(f"{'page':45s} {'first view':>11s} {'after restart':>14s} {'later':>8s}  (ms)")
        for page, first, restart, warm in time_pages(root, args.repeat):
            worst = max(worst, restart, warm)
            print(f"{page:45s} {first * 1000:11.0f} {restart * 1000:14.0f} {warm * 1000:8.0f}")
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
