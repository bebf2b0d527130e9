"""Exactly once across hard crashes: SIGKILL the driver mid-stream twice, restart from the
checkpoints, and nothing is missing or duplicated; the metric tables still match the oracle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from logstream.devtools.generator import GeneratorConfig, generate_logs
from logstream.kafka.admin import ensure_topics
from logstream.runtime.spark import spark_submit_command
from tests.exactly_once import assert_exactly_once
from tests.helpers import produce_with_ids

JOB = Path(__file__).resolve().parents[2] / "jobs" / "stream_logs.py"
PASSED_SETTINGS = (
    "state_dir", "data_root", "checkpoint_root", "status_dir", "kafka_host", "kafka_port",
    "logs_topic", "user_events_topic", "trigger_interval", "max_offsets_per_trigger",
    "shuffle_partitions", "spark_master", "spark_driver_memory",
)  # fmt: skip


def job_command(settings, *extra: str) -> list[str]:
    args = [f"--set={name}={getattr(settings, name)}" for name in PASSED_SETTINGS]
    return spark_submit_command(settings, JOB, [*args, "--pipelines", "logs", *extra])


def ingest_status(settings) -> dict:
    path = Path(settings.status_dir) / "ingest_logs.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def run_until_progress(settings, log, min_valid: int, timeout: float = 420) -> None:
    """Start the job, wait until ingestion has landed at least ``min_valid`` events in this run,
    then SIGKILL the whole driver process group (JVM and Python): no shutdown hooks run."""
    Path(settings.status_dir, "ingest_logs.json").unlink(missing_ok=True)
    process = subprocess.Popen(
        job_command(settings), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the job exited early; see {log.name}"
            if ingest_status(settings).get("totals", {}).get("valid", 0) >= min_valid:
                return
            time.sleep(0.5)
        raise AssertionError(f"no progress within {timeout}s; see {log.name}")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_sigkill_twice_loses_and_duplicates_nothing(spark, kafka_broker, settings, tmp_path):
    run = settings.replace(
        data_root=str(tmp_path / "data"),
        checkpoint_root=str(tmp_path / "checkpoints"),
        status_dir=str(tmp_path / "status"),
        logs_topic="kill-logs",
        user_events_topic="kill-user-events",
        trigger_interval="1 second",
        max_offsets_per_trigger=1_000,  # many small batches: the kills land mid-stream
    )
    ensure_topics(kafka_broker.bootstrap, ["kill-logs"], 4)
    config = GeneratorConfig(
        # 15k events over 17 minutes: enough windows per service for the z-score rule
        seed=11,
        count=15_000,
        events_per_second=15.0,
        late_share=0.0,
        logs_topic="kill-logs",
    )
    records = generate_logs(config)
    # contiguous thirds in event time: each phase is newer than the last, so nothing is late
    third = len(records) // 3
    thirds = [records[:third], records[third : 2 * third], records[2 * third :]]
    ids: list[str] = []
    with open(tmp_path / "job.log", "ab") as log:
        ids += produce_with_ids(kafka_broker.bootstrap, thirds[0])
        run_until_progress(run, log, min_valid=2_000)
        ids += produce_with_ids(kafka_broker.bootstrap, thirds[1])
        run_until_progress(run, log, min_valid=8_000)  # cumulative totals: past the first kill
        ids += produce_with_ids(kafka_broker.bootstrap, thirds[2])
        finished = subprocess.run(
            job_command(run, "--available-now"), stdout=log, stderr=subprocess.STDOUT, timeout=600
        )
    assert finished.returncode == 0, (tmp_path / "job.log").read_text()[-3000:]

    by_id = dict(zip(ids, thirds[0] + thirds[1] + thirds[2], strict=True))
    assert_exactly_once(spark, run, by_id)
