"""Which processes are the job (by command line), and the arguments the job is started with."""

from __future__ import annotations

import itertools

import pytest

from logstream.supervisor.processes import (
    ProcessInfo,
    is_job_process,
    job_arguments,
    pipelines_of,
)


def process(*cmdline: str) -> ProcessInfo:
    return ProcessInfo(pid=4242, ppid=1, pgid=4242, state="S", start_ticks=99, cmdline=cmdline)


@pytest.mark.parametrize(
    ("cmdline", "is_job"),
    [
        (("spark-submit", "/opt/p/jobs/stream_logs.py", "--set", "checkpoint_root=/cp"), True),
        (("python", "jobs/stream_logs.py", "--set=checkpoint_root=/cp"), True),
        (("spark-submit", "/opt/p/jobs/stream_logs.py", "--set", "checkpoint_root=/other"), False),
        (("spark-submit", "/opt/p/jobs/backfill_files.py", "--set", "checkpoint_root=/cp"), False),
        (("sleep", "60"), False),
    ],
)
def test_a_job_process_runs_the_job_on_this_checkpoint_root(run, cmdline, is_job):
    assert is_job_process(process(*cmdline), run.replace(checkpoint_root="/cp")) is is_job


@pytest.mark.parametrize(
    ("cmdline", "pipelines"),
    [
        (("stream_logs.py", "--pipelines", "logs"), ["logs"]),
        (("stream_logs.py", "--pipelines=user_events,logs"), ["user_events", "logs"]),
        (("stream_logs.py", "--set", "x=1"), ["logs", "user_events"]),
    ],
)
def test_pipelines_from_the_command_line(cmdline, pipelines):
    assert pipelines_of(cmdline) == pipelines


def test_a_zombie_is_not_alive():
    assert process("x").alive
    assert not ProcessInfo(1, 0, 1, "Z", None, ()).alive


def test_job_arguments_round_trip_through_settings(run):
    from logstream.config import Settings

    args = job_arguments(run.replace(windows={"sla": {"window": "2 minutes"}}), ["logs"])
    overrides = dict(
        value.split("=", 1) for flag, value in itertools.pairwise(args) if flag == "--set"
    )
    assert args[-2:] == ["--pipelines", "logs"]
    rebuilt = Settings.load(env={}, **overrides)
    assert rebuilt == run.replace(windows={"sla": {"window": "2 minutes"}})
