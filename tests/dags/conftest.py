"""Fixtures for running DAGs for real through Airflow (``dag.test()``) in the test process.

The root conftest points ``AIRFLOW_HOME`` and the SQLite metadata DB at a temporary folder before
Airflow is imported; here the DB is created once per session and the DAGs are loaded with the same
``DagBag`` the dag-processor uses.
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


@pytest.fixture
def airflow_env(settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """What the embedded Airflow gives tasks: the spark_default connection to the test master,
    spark-submit and the venv's Python on PATH, JAVA_HOME, and the session's logstream state."""
    from logstream.runtime.java import java_home

    values = {
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
            {"conn_type": "spark", "host": settings.spark_master}
        ),
        "JAVA_HOME": java_home(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "LOGSTREAM_STATE_DIR": str(settings.state_dir),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield values
