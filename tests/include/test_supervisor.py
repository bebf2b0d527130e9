"""Supervisor logic without Spark: restart policy, checkpoint gate, pid files, health, excerpts.

Checkpoint folders are written by hand in Spark's on-disk format (as Spark 4.1 writes it: a
``metadata`` JSON line, ``offsets/<n>`` and ``commits/<n>`` as ``v1`` + JSON lines, Hadoop
``.crc`` side files); job processes are stand-ins whose command line is the job's, which is all the
process-table checks look at. The real job is supervised in tests/dags/test_log_stream_supervisor.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from logstream import supervisor
from logstream.supervisor import CheckpointError, RestartLoopError

NOW = 1_800_000_000.0
SPARK_CONF = {"spark.sql.shuffle.partitions": "2"}


@pytest.fixture
def run(settings, tmp_path):
    """Settings with this test's own state, checkpoints, status files and alert file."""
    return settings.replace(
        state_dir=tmp_path / "state",
        checkpoint_root=str(tmp_path / "checkpoints"),
        status_dir=str(tmp_path / "status"),
        alert_sink=f"jsonl:{tmp_path / 'alerts.jsonl'}",
        logs_topic="logs-a",
        user_events_topic="user-events-a",
        supervisor_backoff_seconds=10,
        supervisor_max_restarts=3,
        supervisor_restart_window_minutes=30,
        supervisor_stall_seconds=300,
    )


def alerts(run) -> list[dict]:
    path = Path(run.alert_sink.removeprefix("jsonl:"))
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- restart policy -------------------------------------------------------------------------------


def test_backoff_doubles_per_recent_restart():
    assert [supervisor.backoff_delay(n, 10) for n in range(5)] == [0, 10, 20, 40, 80]


def test_restarts_count_only_inside_the_window():
    times = [NOW - 31 * 60, NOW - 29 * 60, NOW - 60, NOW]
    assert supervisor.restarts_in_window(times, NOW, 30) == 3
    assert supervisor.restarts_in_window(times, NOW, 1) == 1


@pytest.mark.parametrize(
    ("state", "ago", "action", "remaining"),
    [
        ("running", [], "none", 0),
        ("starting", [], "none", 0),
        ("held", [], "none", 0),
        ("stopped", [], "start", 0),
        ("failed", [], "restart", 0),
        ("stalled", [], "restart", 0),
        ("failed", [4], "wait", 6),  # 1 recent restart: 10 s backoff, 4 s elapsed
        ("failed", [11], "restart", 0),
        ("failed", [300, 15], "wait", 5),  # 2 recent restarts: 20 s backoff
        ("failed", [300, 25], "restart", 0),
        ("failed", [900, 300, 100], "page", 0),  # 3 within 30 min = restart loop
        ("failed", [3600, 2000, 100], "restart", 0),  # two are outside the window
    ],
)
def test_decide(run, state, ago, action, remaining):
    decision = supervisor.decide(state, [NOW - s for s in ago], NOW, run)
    assert decision.action == action
    assert decision.backoff_remaining_s == pytest.approx(remaining)


def test_window_bucket_changes_once_per_window():
    start = 1_800_000_000 - 1_800_000_000 % 1800  # a 30-minute boundary
    assert supervisor.window_bucket(start, 30) == supervisor.window_bucket(start + 1799, 30)
    assert supervisor.window_bucket(start + 1800, 30) == supervisor.window_bucket(start, 30) + 1


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


def test_valid_checkpoints_pass_and_report_committed_offsets(run, tmp_path):
    root = tmp_path / "checkpoints"
    kafka_checkpoint(root, "logs-a")
    metrics_checkpoint(root)
    (root / "metrics_new_query").mkdir()  # created, nothing written yet: a fresh query

    reports = {r.query: r for r in supervisor.validate_checkpoints(run)}

    assert set(reports) == {"ingest_logs", "metrics_system_health", "metrics_new_query"}
    ingest = reports["ingest_logs"]
    assert (ingest.latest_batch, ingest.committed_batch) == (2, 1)
    assert ingest.committed_offsets == {"logs-a": {"0": 200, "1": 100}}  # batch 1's offsets
    assert reports["metrics_system_health"].committed_offsets is None
    assert reports["metrics_new_query"].query_id is None


def test_missing_checkpoint_root_is_a_first_start(run):
    assert supervisor.validate_checkpoints(run) == []


@pytest.mark.parametrize(
    ("damage", "file", "words"),
    [
        (lambda f: write(f / "offsets" / "2", b"\x8f\x00garbage"), "offsets/2", "not UTF-8"),
        (lambda f: write(f / "offsets" / "2", "garbage"), "offsets/2", "log version"),
        (lambda f: write(f / "offsets" / "2", 'v1\n{"batchWat'), "offsets/2", "line 2"),
        (lambda f: write(f / "offsets" / "1", "v1\n{}"), "offsets/1", "expected 3+"),
        (lambda f: write(f / "commits" / "0", "v1\nnot json"), "commits/0", "not JSON"),
        (lambda f: (f / "metadata").unlink(), "metadata", "new id"),
        (lambda f: write(f / "metadata", '{"noid": 1}'), "metadata", "no query id"),
        (lambda f: write(f / "logstream_state" / "2.json", "{"), "logstream_state/2.json", "JSON"),
    ],
)
def test_corrupt_checkpoint_is_refused_with_file_and_fix(run, tmp_path, damage, file, words):
    folder = kafka_checkpoint(tmp_path / "checkpoints", "logs-a")
    damage(folder)
    before = snapshot(folder)

    with pytest.raises(CheckpointError) as caught:
        supervisor.check_checkpoints(run)

    message = str(caught.value)
    assert f"{folder}/{file}" in message and words in message
    assert "is corrupt" in message
    assert f"mv {folder} {folder}.broken-" in message and "backup" in message
    assert snapshot(folder) == before, "the checkpoint was modified"
    (alert,) = alerts(run)
    assert alert["kind"] == "checkpoint_invalid" and alert["severity"] == "critical"
    assert alert["details"]["file"] == f"{folder}/{file}"


def test_checkpoint_of_another_topic_is_incompatible(run, tmp_path):
    folder = kafka_checkpoint(tmp_path / "checkpoints", "logs-old")
    with pytest.raises(CheckpointError, match="incompatible") as caught:
        supervisor.validate_checkpoints(run)
    assert "['logs-old']" in str(caught.value) and "'logs-a'" in str(caught.value)
    assert f"{folder}/offsets/2" in str(caught.value)


# -- processes and health -------------------------------------------------------------------------


def lookalike(run, *extra: str) -> subprocess.Popen:
    """A process whose command line is the job's on this checkpoint root (it only sleeps)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(120)",
            str(supervisor.JOB_PATH),
            "--set",
            f"checkpoint_root={run.checkpoint_root}",
            *extra,
        ],
        start_new_session=True,
    )
    # Popen returns after fork; wait for the exec so /proc shows the job's command line
    deadline = time.monotonic() + 30
    while str(supervisor.JOB_PATH) not in Path(f"/proc/{process.pid}/cmdline").read_text(
        errors="replace"
    ):
        assert time.monotonic() < deadline, "the lookalike process did not start"
        time.sleep(0.02)
    return process


def record_for(run, pid: int, started_at: float, proc_start: int | None = None) -> None:
    info = supervisor.process_info(pid)
    record = supervisor.JobRecord(
        pid=pid,
        started_at=started_at,
        proc_start=info.start_ticks if proc_start is None else proc_start,
        command=list(info.cmdline),
        pipelines=["logs"],
        checkpoint_root=run.checkpoint_root,
        log=str(supervisor.SupervisorPaths.of(run).log),
    )
    path = supervisor.SupervisorPaths.of(run).pid_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.as_dict()))


def status(run, query: str, age_s: float, **values) -> None:
    updated = datetime.fromtimestamp(time.time() - age_s, UTC).isoformat()
    folder = Path(run.status_dir)
    folder.mkdir(parents=True, exist_ok=True)
    body = {"query": query, "state": "active", "batch_id": 3, "updated_at": updated, **values}
    (folder / f"{query}.json").write_text(json.dumps(body))


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        process.kill()
        process.wait(timeout=10)


def test_never_started_is_stopped(run):
    health = supervisor.inspect(run)
    assert health.state == "stopped" and health.needs_start


def test_pid_file_of_another_process_is_stale(run, processes):
    other = subprocess.Popen(["sleep", "60"])
    processes.append(other)
    record_for(run, other.pid, time.time())

    health = supervisor.inspect(run)

    assert health.state == "failed" and not health.alive
    assert f"stale: pid {other.pid} is not the streaming job" in health.reason
    assert other.poll() is None


def test_reused_pid_is_stale(run, processes):
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time(), proc_start=1)  # recorded start time differs

    health = supervisor.inspect(run)

    assert "started later" in health.note
    # the process is still a job instance on this checkpoint: adopted, not started twice
    assert (health.state, health.recorded) == ("starting", False)


def test_gone_process_is_failed_with_the_log_excerpt(run):
    gone = subprocess.Popen(["true"])
    gone.wait()
    log_path = supervisor.SupervisorPaths.of(run).log
    log_path.parent.mkdir(parents=True)
    log_path.write_text("starting\nstream_logs: query ingest_logs failed: boom\n")
    record = {
        "pid": gone.pid,
        "started_at": time.time(),
        "proc_start": None,
        "command": ["spark-submit"],
        "pipelines": ["logs"],
        "checkpoint_root": run.checkpoint_root,
        "log": str(log_path),
    }
    supervisor.SupervisorPaths.of(run).pid_file.write_text(json.dumps(record))

    health = supervisor.inspect(run)

    assert health.state == "failed" and f"process {gone.pid} is gone" in health.reason
    assert "query ingest_logs failed: boom" in health.error_excerpt


def test_live_job_states_from_status_files(run, processes):
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time() - 1_000)

    assert supervisor.inspect(run).state == "starting"  # no status from this run yet
    status(run, "ingest_logs", age_s=5, kafka_lag=0)
    status(run, "metrics_system_health", age_s=2)
    assert supervisor.inspect(run).state == "running"

    status(run, "ingest_logs", age_s=400, kafka_lag=0)
    assert supervisor.inspect(run).state == "running", "idle stream (no lag) is not stalled"

    status(run, "ingest_logs", age_s=400, kafka_lag=25)
    health = supervisor.inspect(run)
    assert health.state == "stalled" and "ingest_logs for 400s" in health.reason
    assert "Kafka lag is 25" in health.reason

    status(run, "metrics_system_health", age_s=1, state="failed", exception="StreamingQueryE: x")
    health = supervisor.inspect(run)
    assert health.state == "failed" and "metrics_system_health terminated" in health.reason

    status(run, "ingest_logs", age_s=2_000, kafka_lag=25)  # before this run started: ignored
    status(run, "metrics_system_health", age_s=1)
    assert supervisor.inspect(run).state == "starting"


def test_unrecorded_instance_is_adopted_and_stop_holds_it(run, processes):
    job = lookalike(run, "--pipelines", "logs")
    processes.append(job)

    health = supervisor.inspect(run)
    assert (health.state, health.pid, health.recorded) == ("starting", job.pid, False)
    assert health.pipelines == ["logs"]

    outcome = supervisor.supervise(run)  # adopts instead of starting a second instance
    assert outcome.action == "none" and outcome.pid == job.pid
    assert supervisor.read_record(run).pid == job.pid and supervisor.read_record(run).adopted

    stopped = supervisor.stop_job(run)
    assert stopped.action == "stopped" and job.wait(timeout=30) is not None
    assert supervisor.read_record(run) is None
    assert supervisor.inspect(run).state == "held"
    assert supervisor.supervise(run).action == "none"  # held: the watchdog leaves it stopped


def test_duplicate_instances_are_reduced_to_one(run, processes):
    first, second = lookalike(run), lookalike(run)
    processes += [first, second]
    record_for(run, first.pid, time.time())

    supervisor.supervise(run)

    assert second.wait(timeout=30) is not None and first.poll() is None
    assert any("extra streaming job instance" in a["summary"] for a in alerts(run))


# -- supervise: paging, backoff, checkpoint gate --------------------------------------------------


def dead_record(run, log_text: str) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    paths = supervisor.SupervisorPaths.of(run)
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


def history(run, *ago: float) -> None:
    now = time.time()
    supervisor.SupervisorPaths.of(run).restarts.write_text(
        json.dumps({"restarts": [{"at": now - s, "reason": "failed"} for s in ago]})
    )


def test_restart_loop_pages_with_the_error_and_does_not_restart(run):
    trace = "\n".join(
        [
            "INFO starting",
            "ERROR MicroBatchExecution: Query ingest_logs terminated with error",
            "org.apache.spark.SparkException: Job aborted: disk full",
            *[f"\tat org.apache.spark.Frame{n}(Frame.java:{n})" for n in range(200)],
            "stream_logs: query ingest_logs failed: disk full",
        ]
    )
    dead_record(run, trace)
    history(run, 900, 500, 100)
    pid_before = supervisor.SupervisorPaths.of(run).pid_file.read_text()

    with pytest.raises(RestartLoopError, match="3 restarts within 30 minutes") as caught:
        supervisor.supervise(run)

    assert "action=start" in str(caught.value)
    (page,) = alerts(run)
    bucket = supervisor.window_bucket(time.time(), 30)
    assert page["dedup_key"] == f"supervisor:restart_loop:{bucket}"
    assert page["severity"] == "critical" and page["kind"] == "restart_loop"
    excerpt = page["details"]["last_error"]
    assert "stream_logs: query ingest_logs failed: disk full" in excerpt
    assert "Job aborted: disk full" in excerpt and "\tat " not in excerpt
    assert len(excerpt.encode()) <= 2048
    assert supervisor.SupervisorPaths.of(run).pid_file.read_text() == pid_before


def test_backoff_defers_the_restart(run):
    dead_record(run, "killed\n")
    history(run, 3)

    outcome = supervisor.supervise(run)

    assert outcome.action == "waiting" and 6 < outcome.backoff_remaining_s <= 7
    assert len(supervisor.read_history(run)) == 1


def test_corrupt_checkpoint_blocks_the_restart(run, tmp_path):
    dead_record(run, "killed\n")
    folder = kafka_checkpoint(tmp_path / "checkpoints", "logs-a")
    write(folder / "offsets" / "2", "\x00\x00\x00")
    before = snapshot(folder)
    pid_before = supervisor.SupervisorPaths.of(run).pid_file.read_text()

    with pytest.raises(CheckpointError, match="offsets/2"):
        supervisor.supervise(run)

    assert snapshot(folder) == before
    assert supervisor.SupervisorPaths.of(run).pid_file.read_text() == pid_before
    assert [a["kind"] for a in alerts(run)] == ["checkpoint_invalid"]


# -- the driver log excerpt -----------------------------------------------------------------------


def test_excerpt_without_errors_is_the_tail(tmp_path):
    log_path = tmp_path / "stream.log"
    log_path.write_text("".join(f"line {n}\n" for n in range(100)))
    excerpt = supervisor.error_excerpt(log_path)
    assert excerpt.splitlines() == [f"line {n}" for n in range(60, 100)]


def test_excerpt_starts_at_this_runs_offset(tmp_path):
    log_path = tmp_path / "stream.log"
    log_path.write_text("old run: java.lang.OutOfMemoryError\n")
    offset = log_path.stat().st_size
    with log_path.open("a") as out:
        out.write("new run started\nstill fine\n")
    assert supervisor.error_excerpt(log_path, offset) == "new run started\nstill fine"


def test_job_arguments_round_trip_through_settings(run):
    from logstream.config import Settings

    args = supervisor.job_arguments(run.replace(windows={"sla": {"window": "2 minutes"}}), ["logs"])
    overrides = dict(
        value.split("=", 1) for flag, value in itertools.pairwise(args) if flag == "--set"
    )
    assert args[-2:] == ["--pipelines", "logs"]
    rebuilt = Settings.load(env={}, **overrides)
    assert rebuilt == run.replace(windows={"sla": {"window": "2 minutes"}})


def test_stall_uses_kafka_lag_measured_now(run, processes, kafka_broker, topic, tmp_path):
    """The last status said lag 0, but Kafka now holds records past the committed offsets."""
    from tests.helpers import produce_json

    run = run.replace(logs_topic=topic)  # run shares the session broker's port
    folder = tmp_path / "checkpoints" / "ingest_logs"
    write(folder / "metadata", '{"id":"d2c0eab7-812f-4dbe-87df-d68f0c90a142"}')
    zeros = {topic: {str(p): 0 for p in range(run.topic_partitions)}}
    write(folder / "offsets" / "0", offsets_file(0, zeros))
    write(folder / "commits" / "0", 'v1\n{"nextBatchWatermarkMs":0}')
    produce_json(kafka_broker.bootstrap, topic, [{"k": n} for n in range(10)], "k")
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time() - 1_000)
    status(run, "ingest_logs", age_s=400, kafka_lag=0)

    health = supervisor.inspect(run)

    assert health.state == "stalled" and "Kafka lag is 10" in health.reason, health
