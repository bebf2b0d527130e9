"""The watch between watchdog steps: its pulse read from real pid files, stand-in job processes
and status files, and its loop on a hand-driven clock with a stand-in supervisor step (the real
step starts Spark; tests/dags/test_log_stream_supervisor runs it for real)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from logstream.errors import ServiceError
from logstream.supervisor.actions import Outcome, RestartLoopError, supervise
from logstream.supervisor.state import SupervisorPaths, read_history, write_hold
from logstream.supervisor.watch import pulse, watch_job
from tests.include.supervisor.support import dead_record, lookalike, record_for, status

# -- the pulse ------------------------------------------------------------------------------------


def test_no_pid_file_is_absent_and_a_hold_is_held(run):
    assert (pulse(run).state, pulse(run).reason) == ("absent", "no job recorded (no pid file)")
    write_hold(run)
    held = pulse(run)
    assert held.state == "held" and held.reason.startswith("stopped by an operator at 20")


def test_a_gone_driver_is_dead(run):
    dead_record(run, "killed\n")
    pid = json.loads(SupervisorPaths.of(run).pid_file.read_text())["pid"]
    found = pulse(run)
    assert (found.state, found.reason, found.pid) == (
        "dead",
        f"the driver process {pid} is gone",
        pid,
    )


def test_a_reused_pid_is_dead(run, processes):
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time(), proc_start=1)  # the recorded process started at tick 1
    found = pulse(run)
    assert found.state == "dead"
    assert found.reason.startswith(f"the pid file is stale: pid {job.pid} now belongs to")


def test_a_live_driver_is_alive_until_a_query_of_this_run_fails(run, processes):
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time() - 1_000)
    assert pulse(run).state == "alive"

    # a failure written by an earlier run of the job (before this one started) does not count
    status(run, "ingest_logs", age_s=1_100, state="failed", exception="Boom: old\n\tat x")
    assert pulse(run).state == "alive"

    # progress older than the stall limit is not judged here: that needs Kafka's offsets
    status(run, "ingest_logs", age_s=400, batch_id=7)
    assert (pulse(run).state, pulse(run).reason) == ("alive", "all queries report progress")

    status(run, "ingest_logs", age_s=2, state="failed", exception="Boom: disk full\n\tat x")
    found = pulse(run)
    assert (found.state, found.pid) == ("failed", job.pid)
    assert found.reason == "query ingest_logs terminated with an exception: Boom: disk full"


def test_a_failure_written_just_before_a_restart_belongs_to_the_run_that_died(run, processes):
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time() - 10)  # launched 10 s ago
    status(run, "ingest_logs", age_s=10.5, state="failed", exception="Boom: before the restart")
    assert pulse(run).state == "alive"

    # a job found in the process table: its start is known to about a second, so it counts
    record = json.loads(SupervisorPaths.of(run).pid_file.read_text())
    SupervisorPaths.of(run).pid_file.write_text(json.dumps({**record, "adopted": True}))
    assert pulse(run).state == "failed"


def test_a_sigkilled_process_is_seen_dead_within_a_poll(run, processes):
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time())
    killed_at: list[float] = []
    stepped_at: list[float] = []

    def kill_soon() -> None:
        time.sleep(1.5)
        killed_at.append(time.monotonic())
        os.kill(job.pid, signal.SIGKILL)

    def step(hook) -> Outcome:
        stepped_at.append(time.monotonic())
        write_hold(run)  # ends the watch
        return Outcome("none", "stand-in step", "failed")

    threading.Thread(target=kill_soon, daemon=True).start()
    report = watch_job(run, 30, step=step)

    assert report.ended.startswith("the job is held")
    assert len(stepped_at) == 1 and 0 <= stepped_at[0] - killed_at[0] < 1.5


# -- the loop, on a hand-driven clock -------------------------------------------------------------


class Clock:
    """Seconds since the watch began; only ``sleep`` moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Steps:
    """A stand-in supervisor step: returns the given outcomes in turn and records when it ran."""

    def __init__(self, clock: Clock, *outcomes: Outcome, then=None) -> None:
        self.clock = clock
        self.outcomes = list(outcomes)
        self.then = then or (lambda outcome: None)
        self.at: list[float] = []
        self.hooks: list[object] = []

    def __call__(self, hook) -> Outcome:
        self.at.append(self.clock.now)
        self.hooks.append(hook)
        outcome = self.outcomes.pop(0) if self.outcomes else Outcome("none", "ok", "running")
        self.then(outcome)
        return outcome


def relaunch(run, processes):
    """What a restart leaves behind: a live job recorded in the pid file."""

    def record_a_live_job(outcome: Outcome) -> None:
        if outcome.launched:
            job = lookalike(run)
            processes.append(job)
            record_for(run, job.pid, time.time())

    return record_a_live_job


def test_dead_driver_is_restarted_at_once_then_fully_checked_every_minute(run, processes):
    dead_record(run, "killed\n")
    clock = Clock()
    preflight = object()
    steps = Steps(
        clock, Outcome("restarted", "failed: gone", "failed", 4242), then=relaunch(run, processes)
    )

    report = watch_job(run, 150, step=steps, before_start=preflight, clock=clock, sleep=clock.sleep)

    # 0 s: the pulse finds the driver dead; 60 s and 120 s: the full steps of a live job
    assert steps.at == [0.0, 60.0, 120.0]
    assert steps.hooks == [preflight] * 3
    assert (report.ended, report.watched_s, report.restarts) == ("watched for 150s", 150.0, 1)
    assert [(s["at_s"], s["pulse"], s["action"]) for s in report.steps] == [
        (0.0, "dead", "restarted"),
        (60.0, "alive", "none"),
        (120.0, "alive", "none"),
    ]


def test_backoff_is_waited_out_before_the_next_step(run, processes):
    dead_record(run, "killed\n")
    clock = Clock()
    steps = Steps(
        clock,
        Outcome("waiting", "failed: gone; backing off", "failed", backoff_remaining_s=12.5),
        Outcome("restarted", "failed: gone", "failed", 4242),
        then=relaunch(run, processes),
    )

    report = watch_job(run, 30, step=steps, clock=clock, sleep=clock.sleep)

    # polled every second: the first poll at or after 12.5 s is 13 s
    assert steps.at == [0.0, 13.0]
    assert [s["action"] for s in report.steps] == ["waiting", "restarted"]


def test_a_step_that_starts_nothing_is_repeated_every_five_seconds(run):
    dead_record(run, "killed\n")
    clock = Clock()
    steps = Steps(clock)  # always "none": the pulse keeps asking

    watch_job(run, 12, step=steps, clock=clock, sleep=clock.sleep)

    assert steps.at == [0.0, 5.0, 10.0]


def test_a_queued_run_ends_the_watch_within_five_seconds(run, processes):
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time())
    clock = Clock()
    asked_at: list[float] = []

    def should_end() -> str | None:
        asked_at.append(clock.now)
        return "1 run queued" if clock.now >= 7 else None

    steps = Steps(clock)
    report = watch_job(run, 3600, step=steps, should_end=should_end, clock=clock, sleep=clock.sleep)

    assert asked_at == [0.0, 5.0, 10.0]
    assert (report.ended, report.watched_s, steps.at) == ("1 run queued", 10.0, [])


def test_a_hold_ends_the_watch_without_a_step(run):
    write_hold(run)
    clock = Clock()
    steps = Steps(clock)

    report = watch_job(run, 3600, step=steps, clock=clock, sleep=clock.sleep)

    assert report.ended.startswith("the job is held: stopped by an operator at")
    assert (report.watched_s, steps.at) == (0.0, [])


def test_a_restart_loop_ends_the_watch_with_its_error(run):
    dead_record(run, "killed\n")

    def paging_step(hook) -> Outcome:
        raise RestartLoopError("3 restarts within 30 minutes")

    with pytest.raises(RestartLoopError, match="3 restarts"):
        watch_job(run, 60, step=paging_step, clock=Clock())


# -- the preflight hook of a real supervisor step -------------------------------------------------


def test_a_failing_preflight_stops_the_restart_before_anything_changes(run):
    dead_record(run, "killed\n")
    pid_file = SupervisorPaths.of(run).pid_file.read_text()

    def preflight() -> None:
        raise ServiceError("Kafka is not reachable at 127.0.0.1:1")

    with pytest.raises(ServiceError, match="Kafka is not reachable"):
        watch_job(run, 60, before_start=preflight, clock=Clock())

    assert SupervisorPaths.of(run).pid_file.read_text() == pid_file
    assert read_history(run) == []


def test_preflight_runs_only_when_a_start_is_due(run, processes):
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time())

    def preflight() -> None:
        raise AssertionError("preflight ran for a live job")

    assert supervise(run, before_start=preflight).action == "none"
