"""One watchdog step and the operator's start and stop, on stand-in job processes: adopting an
unrecorded instance, one instance per checkpoint, paging on a restart loop, backoff, and the
checkpoint gate before a restart."""

from __future__ import annotations

import time

import pytest

from logstream.supervisor.actions import (
    RestartLoopError,
    check_run,
    confirm_start,
    stop_job,
    supervise,
)
from logstream.supervisor.checkpoints import CheckpointError
from logstream.supervisor.health import inspect
from logstream.supervisor.policy import window_bucket
from logstream.supervisor.state import SupervisorPaths, read_history, read_record
from tests.include.supervisor.support import (
    alerts,
    dead_record,
    history,
    kafka_checkpoint,
    lookalike,
    record_for,
    snapshot,
    write,
)

# -- one instance ---------------------------------------------------------------------------------


def test_unrecorded_instance_is_adopted_and_stop_holds_it(run, processes):
    job = lookalike(run, "--pipelines", "logs")
    processes.append(job)

    health = inspect(run)
    assert (health.state, health.pid, health.recorded) == ("starting", job.pid, False)
    assert health.pipelines == ["logs"]

    outcome = supervise(run)  # adopts instead of starting a second instance
    assert outcome.action == "none" and outcome.pid == job.pid
    assert read_record(run).pid == job.pid and read_record(run).adopted

    stopped = stop_job(run)
    assert stopped.action == "stopped" and job.wait(timeout=30) is not None
    assert read_record(run) is None
    assert inspect(run).state == "held"
    assert supervise(run).action == "none"  # held: the watchdog leaves it stopped


def test_duplicate_instances_are_reduced_to_one(run, processes):
    first, second = lookalike(run), lookalike(run)
    processes += [first, second]
    record_for(run, first.pid, time.time())

    supervise(run)

    assert second.wait(timeout=30) is not None and first.poll() is None
    assert any("extra streaming job instance" in a["summary"] for a in alerts(run))


# -- paging, backoff, checkpoint gate -------------------------------------------------------------


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
    pid_before = SupervisorPaths.of(run).pid_file.read_text()

    with pytest.raises(RestartLoopError, match="3 restarts within 30 minutes") as caught:
        supervise(run)

    assert "action=start" in str(caught.value)
    (page,) = alerts(run)
    bucket = window_bucket(time.time(), 30)
    assert page["dedup_key"] == f"supervisor:restart_loop:{bucket}"
    assert page["severity"] == "critical" and page["kind"] == "restart_loop"
    excerpt = page["details"]["last_error"]
    assert "stream_logs: query ingest_logs failed: disk full" in excerpt
    assert "Job aborted: disk full" in excerpt and "\tat " not in excerpt
    assert len(excerpt.encode()) <= 2048
    assert SupervisorPaths.of(run).pid_file.read_text() == pid_before


def test_backoff_defers_the_restart(run):
    dead_record(run, "killed\n")
    history(run, 3)

    outcome = supervise(run)

    assert outcome.action == "waiting" and 6 < outcome.backoff_remaining_s <= 7
    assert len(read_history(run)) == 1


def test_corrupt_checkpoint_blocks_the_restart(run, tmp_path):
    dead_record(run, "killed\n")
    folder = kafka_checkpoint(tmp_path / "checkpoints", "logs-a")
    write(folder / "offsets" / "2", "\x00\x00\x00")
    before = snapshot(folder)
    pid_before = SupervisorPaths.of(run).pid_file.read_text()

    with pytest.raises(CheckpointError, match="offsets/2"):
        supervise(run)

    assert snapshot(folder) == before
    assert SupervisorPaths.of(run).pid_file.read_text() == pid_before
    assert [a["kind"] for a in alerts(run)] == ["checkpoint_invalid"]


# -- the DAG's first and last steps ---------------------------------------------------------------


def test_check_run_on_a_fresh_install_wants_a_start_and_finds_no_checkpoints(run):
    report = check_run(run, "supervise")
    assert (report["state"], report["start_due"], report["checkpoints"]) == (
        "stopped",
        True,
        [],
    )
    stop = check_run(run, "stop")  # a stop needs no preflight and no checkpoint check
    assert stop["start_due"] is False and "checkpoints" not in stop


def test_confirm_start_only_waits_when_the_run_started_the_job(run):
    assert confirm_start(run, {"action": "none"}, timeout=1) == {
        "confirmed": False,
        "reason": "nothing started (none)",
    }
