"""The job's health: the verdict from status files (pure), and :func:`inspect` on pid files,
stand-in job processes and status files."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime

from logstream.supervisor.health import inspect, judge_queries
from logstream.supervisor.state import SupervisorPaths
from tests.include.supervisor.support import NOW, lookalike, record_for, status

# -- the verdict from status files ----------------------------------------------------------------

STARTED = NOW - 1_000
FIVE_S_AGO = "2027-01-15T07:59:55+00:00"  # NOW is 2027-01-15T08:00:00Z
FOUR_HUNDRED_S_AGO = "2027-01-15T07:53:20Z"


def test_the_hand_written_times_are_what_they_say():
    assert datetime.fromisoformat(FIVE_S_AGO).timestamp() == NOW - 5
    assert datetime.fromisoformat(FOUR_HUNDRED_S_AGO).timestamp() == NOW - 400


def no_lag_asked() -> int | None:
    raise AssertionError("Kafka lag asked for although no query is old")


def test_all_ingestion_queries_with_progress_is_running():
    current = {"ingest_logs": {"batch_id": 0, "updated_at": FIVE_S_AGO}}
    verdict = judge_queries(current, ["logs"], STARTED, NOW, 300, no_lag_asked)
    assert (verdict.state, verdict.reason) == ("running", "all queries report progress")


def test_idle_counts_as_progress_and_missing_ingestion_is_starting():
    current = {"ingest_logs": {"state": "idle", "updated_at": FIVE_S_AGO}}
    verdict = judge_queries(current, ["logs", "user_events"], NOW - 10, NOW, 300, no_lag_asked)
    assert verdict.state == "starting"
    assert verdict.reason == "waiting for the first progress of ['ingest_user_events']"


def test_failed_query_wins_and_carries_its_exception():
    current = {
        "ingest_logs": {"batch_id": 1, "updated_at": FOUR_HUNDRED_S_AGO},
        "metrics_b": {"state": "failed", "exception": "Boom: b\n\tat x", "updated_at": FIVE_S_AGO},
        "metrics_a": {"exception": "  Boom: a\nmore", "updated_at": FIVE_S_AGO},
    }
    verdict = judge_queries(current, ["logs"], STARTED, NOW, 300, no_lag_asked)
    assert verdict.state == "failed"
    assert verdict.reason == "query metrics_a terminated with an exception: Boom: a"
    assert verdict.exception == "  Boom: a\nmore"


def test_old_progress_is_a_stall_only_with_kafka_lag():
    current = {"ingest_logs": {"batch_id": 1, "updated_at": FOUR_HUNDRED_S_AGO}}
    idle = judge_queries(current, ["logs"], STARTED, NOW, 300, lambda: 0)
    assert idle.state == "running"
    unknown = judge_queries(current, ["logs"], STARTED, NOW, 300, lambda: None)
    assert unknown.state == "running"
    stalled = judge_queries(current, ["logs"], STARTED, NOW, 300, lambda: 7)
    assert stalled.state == "stalled"
    assert stalled.reason == (
        "no progress from ingest_logs for 400s (limit 300s) while Kafka lag is 7"
    )


def test_a_query_without_any_status_ages_from_the_start():
    verdict = judge_queries({}, ["logs"], NOW - 301, NOW, 300, lambda: 3)
    assert verdict.reason.startswith("no progress from ingest_logs for 301s")


# -- inspect --------------------------------------------------------------------------------------


def test_never_started_is_stopped(run):
    health = inspect(run)
    assert health.state == "stopped" and health.needs_start


def test_pid_file_of_another_process_is_stale(run, processes):
    other = subprocess.Popen(["sleep", "60"])
    processes.append(other)
    record_for(run, other.pid, time.time())

    health = inspect(run)

    assert health.state == "failed" and not health.alive
    assert f"stale: pid {other.pid} is not the streaming job" in health.reason
    assert other.poll() is None


def test_reused_pid_is_stale(run, processes):
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time(), proc_start=1)  # recorded start time differs

    health = inspect(run)

    assert "started later" in health.note
    # the process is still a job instance on this checkpoint: adopted, not started twice
    assert (health.state, health.recorded) == ("starting", False)


def test_gone_process_is_failed_with_the_log_excerpt(run):
    gone = subprocess.Popen(["true"])
    gone.wait()
    log_path = SupervisorPaths.of(run).log
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
    SupervisorPaths.of(run).pid_file.write_text(json.dumps(record))

    health = inspect(run)

    assert health.state == "failed" and f"process {gone.pid} is gone" in health.reason
    assert "query ingest_logs failed: boom" in health.error_excerpt


def test_live_job_states_from_status_files(run, processes):
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time() - 1_000)

    assert inspect(run).state == "starting"  # no status from this run yet
    status(run, "ingest_logs", age_s=5, kafka_lag=0)
    status(run, "metrics_system_health", age_s=2)
    assert inspect(run).state == "running"

    status(run, "ingest_logs", age_s=400, kafka_lag=0)
    assert inspect(run).state == "running", "idle stream (no lag) is not stalled"

    status(run, "ingest_logs", age_s=400, kafka_lag=25)
    health = inspect(run)
    assert health.state == "stalled" and "ingest_logs for 400s" in health.reason
    assert "Kafka lag is 25" in health.reason

    status(run, "metrics_system_health", age_s=1, state="failed", exception="StreamingQueryE: x")
    health = inspect(run)
    assert health.state == "failed" and "metrics_system_health terminated" in health.reason

    status(run, "ingest_logs", age_s=2_000, kafka_lag=25)  # before this run started: ignored
    status(run, "metrics_system_health", age_s=1)
    assert inspect(run).state == "starting"
