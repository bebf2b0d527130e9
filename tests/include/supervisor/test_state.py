"""The supervisor's state files: the pid file, the restart history and the hold."""

from __future__ import annotations

import json

from logstream.supervisor.state import (
    JobRecord,
    SupervisorPaths,
    clear_hold,
    read_history,
    read_hold,
    read_record,
    write_history,
    write_hold,
    write_record,
)

NOW = 1_800_000_000.0
DAY = 86_400


def test_state_lives_under_the_state_dir(run, tmp_path):
    paths = SupervisorPaths.of(run)
    assert paths.root == tmp_path / "state" / "supervisor"
    assert (paths.pid_file.name, paths.log.name, paths.restarts.name) == (
        "stream.pid",
        "stream.log",
        "restarts.json",
    )


def test_record_round_trips_and_unknown_keys_are_ignored(run):
    record = JobRecord(
        pid=12,
        started_at=NOW,
        proc_start=345,
        command=["spark-submit", "jobs/stream_logs.py"],
        pipelines=["logs"],
        checkpoint_root="/cp",
        log="/state/supervisor/stream.log",
    )
    write_record(run, record)
    assert read_record(run) == record

    data = json.loads(SupervisorPaths.of(run).pid_file.read_text())
    SupervisorPaths.of(run).pid_file.write_text(json.dumps({**data, "from_the_future": 1}))
    assert read_record(run) == record


def test_unreadable_or_incomplete_pid_file_reads_as_no_record(run):
    path = SupervisorPaths.of(run).pid_file
    assert read_record(run) is None
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert read_record(run) is None
    path.write_text('{"pid": 12}')
    assert read_record(run) is None


def test_history_keeps_a_week_and_skips_malformed_entries(run):
    write_history(
        run,
        [{"at": NOW - 8 * DAY, "reason": "old"}, {"at": NOW - 6 * DAY, "reason": "kept"}],
        NOW,
    )
    assert read_history(run) == [{"at": NOW - 6 * DAY, "reason": "kept"}]

    SupervisorPaths.of(run).restarts.write_text(
        json.dumps({"restarts": [{"at": "yesterday"}, 7, {"at": NOW, "reason": "ok"}]})
    )
    assert read_history(run) == [{"at": NOW, "reason": "ok"}]


def test_hold_is_set_and_cleared(run):
    assert read_hold(run) is None
    write_hold(run)
    assert set(read_hold(run)) == {"at"}
    clear_hold(run)
    assert read_hold(run) is None
