"""Hand-made stand-ins for what the supervisor reads: checkpoints, job processes, status files,
pid files and restart histories.

Checkpoint folders are written by hand in Spark's on-disk format (as Spark 4.1 writes it: a
``metadata`` JSON line, ``offsets/<n>`` and ``commits/<n>`` as ``v1`` + JSON lines, Hadoop
``.crc`` side files); job processes are stand-ins whose command line is the job's, which is all the
process-table checks look at. The real job is supervised in tests/dags/test_log_stream_supervisor.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from logstream.config import Settings
from logstream.supervisor.processes import JOB_PATH, process_info
from logstream.supervisor.state import JobRecord, SupervisorPaths

NOW = 1_800_000_000.0
SPARK_CONF = {"spark.sql.shuffle.partitions": "2"}


def alerts(run: Settings) -> list[dict]:
    """The alerts written to the test's jsonl alert sink, oldest first."""
    path = Path(run.alert_sink.removeprefix("jsonl:"))
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- checkpoints ----------------------------------------------------------------------------------


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(data)
    (path.parent / f".{path.name}.crc").write_bytes(b"crc-of-" + path.name.encode())


def offsets_file(batch: int, source: dict) -> str:
    meta = {
        "batchWatermarkMs": 0,
        "batchTimestampMs": 1_795_000_000_000 + batch,
        "conf": SPARK_CONF,
    }
    return f"v1\n{json.dumps(meta)}\n{json.dumps(source)}"


def kafka_checkpoint(root: Path, topic: str, batches: int = 3, committed: int = 2) -> Path:
    """An ingestion checkpoint: batch b read the topic up to offset 100*(b+1) per partition."""
    folder = root / "ingest_logs"
    write(folder / "metadata", '{"id":"d2c0eab7-812f-4dbe-87df-d68f0c90a142"}')
    write(folder / "sources" / "0" / "0", b"\x00v1\n" + json.dumps({topic: {"0": 0}}).encode())
    for batch in range(batches):
        ends = {"0": 100 * (batch + 1), "1": 50 * (batch + 1)}
        write(folder / "offsets" / str(batch), offsets_file(batch, {topic: ends}))
        write(folder / "logstream_state" / f"{batch}.json", '{"max_event_time_ms": 1}')
    for batch in range(committed):
        write(folder / "commits" / str(batch), 'v1\n{"nextBatchWatermarkMs":0}')
    return folder


def metrics_checkpoint(root: Path) -> Path:
    folder = root / "metrics_system_health"
    write(folder / "metadata", '{"id":"13449448-96fd-4f46-b1e2-ca30bf993aec"}')
    write(folder / "offsets" / "0", offsets_file(0, {"logOffset": 3}))
    write(folder / "commits" / "0", 'v1\n{"nextBatchWatermarkMs":1795662585247}')
    write(folder / "state" / "0" / "0" / "1.changelog", b"\x00\x01binary")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- processes, pid files, status files, restart history ------------------------------------------


def lookalike(run: Settings, *extra: str) -> subprocess.Popen:
    """A process whose command line is the job's on this checkpoint root (it only sleeps)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(120)",
            str(JOB_PATH),
            "--set",
            f"checkpoint_root={run.checkpoint_root}",
            *extra,
        ],
        start_new_session=True,
    )
    # Popen returns after fork; wait for the exec so /proc shows the job's command line
    deadline = time.monotonic() + 30
    while str(JOB_PATH) not in Path(f"/proc/{process.pid}/cmdline").read_text(errors="replace"):
        assert time.monotonic() < deadline, "the lookalike process did not start"
        time.sleep(0.02)
    return process


def record_for(run: Settings, pid: int, started_at: float, proc_start: int | None = None) -> None:
    info = process_info(pid)
    record = JobRecord(
        pid=pid,
        started_at=started_at,
        proc_start=info.start_ticks if proc_start is None else proc_start,
        command=list(info.cmdline),
        pipelines=["logs"],
        checkpoint_root=run.checkpoint_root,
        log=str(SupervisorPaths.of(run).log),
    )
    path = SupervisorPaths.of(run).pid_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.as_dict()))


def status(run: Settings, query: str, age_s: float, **values) -> None:
    updated = datetime.fromtimestamp(time.time() - age_s, UTC).isoformat()
    folder = Path(run.status_dir)
    folder.mkdir(parents=True, exist_ok=True)
    body = {"query": query, "state": "active", "batch_id": 3, "updated_at": updated, **values}
    (folder / f"{query}.json").write_text(json.dumps(body))


def dead_record(run: Settings, log_text: str) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    paths = SupervisorPaths.of(run)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.log.write_text(log_text)
    record = {
        "pid": gone.pid,
        "started_at": time.time() - 60,
        "proc_start": None,
        "command": ["spark-submit"],
        "pipelines": ["logs"],
        "checkpoint_root": run.checkpoint_root,
        "log": str(paths.log),
    }
    paths.pid_file.write_text(json.dumps(record))


def history(run: Settings, *ago: float) -> None:
    now = time.time()
    SupervisorPaths.of(run).restarts.write_text(
        json.dumps({"restarts": [{"at": now - s, "reason": "failed"} for s in ago]})
    )
