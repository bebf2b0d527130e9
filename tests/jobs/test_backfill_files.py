"""jobs/backfill_files.py refuses bad arguments with exit 2 and a message, before Spark starts.
The job itself runs under spark-submit in tests/dags/test_log_backfill.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

JOB = Path(__file__).resolve().parents[2] / "jobs" / "backfill_files.py"


@pytest.fixture(scope="module")
def job():
    spec = importlib.util.spec_from_file_location("backfill_files", JOB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--path", "/logs", "--start-date", "2015-02-30"], "'2015-02-30' is not a date"),
        (
            ["--path", "/logs", "--start-date", "2015-12-31", "--end-date", "2015-12-01"],
            "end_date 2015-12-01 is before start_date 2015-12-31",
        ),
        (["--path", "/logs", "--format", "syslog"], "syslog"),
        (["--path", " "], "path is empty"),
        (["--path", "/logs", "--set", "no_such_setting=1"], "unknown setting(s) no_such_setting"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(job, capsys, arguments, message):
    assert job.main(arguments) == 2
    assert message in capsys.readouterr().err
