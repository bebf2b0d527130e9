"""The streaming queries' status files and progress history (logstream.stream.status), as the
supervisor and the hourly latency report read them."""

from __future__ import annotations

import json
import types
from datetime import UTC, datetime, timedelta

from logstream.stream import history, status

HOUR = datetime(2026, 11, 25, 13, tzinfo=UTC)


def progress_event(name: str, timestamp: str, **extra) -> types.SimpleNamespace:
    """What Spark hands a listener: ``event.progress.json`` (the real progress JSON shape)."""
    progress = {
        "id": "3f1c",
        "runId": "9a2b",
        "name": name,
        "timestamp": timestamp,
        "batchId": 7,
        "numInputRows": 10,
        "durationMs": {"triggerExecution": 1234},
        "eventTime": {
            "watermark": "2026-11-25T13:00:00.000Z",
            "max": "2026-11-25T13:04:58.500Z",
        },
        "stateOperators": [],
        "sources": [
            {
                "description": "KafkaV2[Subscribe[logs]]",
                "endOffset": {"logs": {"0": 90, "1": 40}},
                "latestOffset": {"logs": {"0": 100, "1": 45}},
            }
        ],
        **extra,
    }
    return types.SimpleNamespace(progress=types.SimpleNamespace(json=json.dumps(progress)))


def test_status_listener_appends_one_history_line_per_progress(tmp_path):
    listener = status.StatusListener(tmp_path, status.TotalsRegistry(), metrics=False)
    listener.onQueryProgress(progress_event("ingest_logs", "2026-11-25T13:05:00.000Z"))
    listener.onQueryProgress(progress_event("ingest_logs", "2026-11-25T13:05:02.000Z"))

    # the status file keeps working as before
    current = json.loads((tmp_path / "ingest_logs.json").read_text())
    assert current["batch_duration_ms"] == 1234 and current["kafka_lag"] == 15
    assert [s["query"] for s in status.read_statuses(tmp_path)] == ["ingest_logs"]

    lines = (tmp_path / "history" / "ingest_logs" / "2026-11-25.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == {
        "timestamp": "2026-11-25T13:05:00.000Z",
        "query": "ingest_logs",
        "run_id": "9a2b",
        "batch_id": 7,
        "num_input_rows": 10,
        "batch_duration_ms": 1234,
        "watermark": "2026-11-25T13:00:00.000Z",
        "max_event_time": "2026-11-25T13:04:58.500Z",
        "kafka_lag": 15,  # (100 - 90) + (45 - 40)
        "event_time_lag_ms": 1500.0,  # 13:05:00.000 - 13:04:58.500
    }


def test_history_is_read_by_hour_skips_broken_lines_and_prunes_old_days(tmp_path):
    for stamp in ("2026-11-25T12:59:59Z", "2026-11-25T13:00:00Z", "2026-11-25T13:59:59Z"):
        history.append_history(tmp_path, {"timestamp": stamp, "query": "q/1", "batch_id": 1})
    history.append_history(tmp_path, {"timestamp": "2026-11-25T14:00:00Z", "query": "q2"})
    folder = tmp_path / "history" / "q_1"  # the slash cannot reach the file system
    with (folder / "2026-11-25.jsonl").open("a") as out:
        out.write('{"timestamp": "2026-11-25T13:30:00Z", "query": "q/1", "ba')  # cut short

    got = history.read_history(tmp_path, HOUR, HOUR + timedelta(hours=1))
    assert sorted(r["timestamp"] for r in got) == ["2026-11-25T13:00:00Z", "2026-11-25T13:59:59Z"]
    assert {r["query"] for r in got} == {"q/1"}

    # a new day's first line deletes the files older than keep_days
    history.append_history(tmp_path, {"timestamp": "2026-11-20T10:00:00Z", "query": "q/1"})
    history.append_history(
        tmp_path, {"timestamp": "2026-11-27T00:00:01Z", "query": "q/1"}, keep_days=3
    )
    assert sorted(p.name for p in folder.iterdir()) == ["2026-11-25.jsonl", "2026-11-27.jsonl"]
