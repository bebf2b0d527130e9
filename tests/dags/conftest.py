"""Fixtures for running DAGs for real through Airflow (``dag.test()``) in the test process.

The root conftest points ``AIRFLOW_HOME`` and the SQLite metadata DB at a temporary folder before
Airflow is imported; here the DB is created once per session and the DAGs are loaded with the same
``DagBag`` the dag-processor uses.

The ``spark-submit`` the tasks find on PATH starts the job's driver without the task's
``LOGSTREAM_*`` environment, as a driver on a cluster would be: a job sees only the settings its
DAG passes on the command line, so a DAG that relied on the worker's environment fails its test.
It also records each invocation's arguments (:func:`spark_submits`), so a test can tell whether a
task submitted a job at all.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh Airflow metadata DB (SQLite in the session's temporary AIRFLOW_HOME)."""
    from airflow.utils import db

    db.initdb()


@pytest.fixture(scope="session")
def dag_bag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}, bag.import_errors
    return bag


#: Environment variables a job's driver keeps: logging, not a setting.
DRIVER_KEEPS = ("LOGSTREAM_SPARK_LOG_LEVEL",)

ISOLATING_SPARK_SUBMIT = """#!{python}
import json
import os
import sys

with open({calls!r}, "a", encoding="utf-8") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
env = {{
    name: value
    for name, value in os.environ.items()
    if not name.startswith("LOGSTREAM_") or name in {keeps!r}
}}
env["LOGSTREAM_STATE_DIR"] = {driver_state!r}  # the driver host's own defaults
os.execve({spark_submit!r}, [{spark_submit!r}, *sys.argv[1:]], env)
"""


@pytest.fixture(scope="session")
def spark_submit_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file the test ``spark-submit`` appends each invocation's arguments to (JSON lines)."""
    return tmp_path_factory.mktemp("spark-submit-calls") / "calls.jsonl"


def spark_submits(log: Path) -> list[list[str]]:
    """The arguments of every ``spark-submit`` run so far in this session."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def isolated_spark_submit(tmp_path_factory: pytest.TempPathFactory, spark_submit_log: Path) -> Path:
    """A folder holding a ``spark-submit`` that records its arguments, then runs the real one
    with the ``LOGSTREAM_*`` variables removed and ``LOGSTREAM_STATE_DIR`` pointing at a folder
    of its own."""
    from logstream.runtime.jars import spark_home

    folder = tmp_path_factory.mktemp("isolated-bin")
    script = folder / "spark-submit"
    script.write_text(
        ISOLATING_SPARK_SUBMIT.format(
            python=sys.executable,
            calls=str(spark_submit_log),
            keeps=DRIVER_KEEPS,
            driver_state=str(tmp_path_factory.mktemp("driver-state")),
            spark_submit=str(spark_home() / "bin" / "spark-submit"),
        )
    )
    script.chmod(0o755)
    return folder


@pytest.fixture
def airflow_env(
    settings, isolated_spark_submit: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """What the embedded Airflow gives tasks: the spark_default connection to the test master,
    an isolating spark-submit and the venv's Python on PATH, JAVA_HOME, and the session's
    logstream state."""
    from logstream.runtime.java import java_home

    path = os.pathsep.join(
        [str(isolated_spark_submit), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    )
    values = {
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
            {"conn_type": "spark", "host": settings.spark_master}
        ),
        "JAVA_HOME": java_home(),
        "PATH": path,
        "LOGSTREAM_STATE_DIR": str(settings.state_dir),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield values
