"""A real DAG run whose task fails: the failure callback pages through the webhook channel, and a
receiver that never answers does not hold the run hostage.

``dag.test()`` only runs DAGs that a DAG bundle holds, so the test writes its tiny DAG to a
temporary folder and registers that folder as a second bundle next to the project's dags/.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import CHANNEL_ENV, Receiver

DAG_SOURCE = """
from datetime import datetime, timezone

from airflow.sdk import dag, task

from logstream.alerts import task_failure_alert


@dag(
    dag_id="{dag_id}",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["test"],
    default_args={{"retries": 0, "on_failure_callback": task_failure_alert}},
)
def failing():
    @task
    def explode():
        raise RuntimeError("disk full on /data " + "x" * 10_000)

    explode()


failing()
"""
DAG_IDS = ("alert_dag_webhook", "alert_dag_hanging")


@pytest.fixture(scope="module")
def test_dags_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("alert_test_dags")
    for dag_id in DAG_IDS:
        (folder / f"{dag_id}.py").write_text(DAG_SOURCE.format(dag_id=dag_id))
    return folder


@pytest.fixture
def failing_dag(airflow_db, test_dags_folder: Path, monkeypatch: pytest.MonkeyPatch):
    """Loads one of the test DAGs, its folder registered as a bundle for the test's duration."""
    from airflow.dag_processing.dagbag import DagBag

    bundles = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {},
        },
        {
            "name": "alert-tests",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(test_dags_folder)},
        },
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    bag = DagBag(dag_folder=str(test_dags_folder))
    assert bag.import_errors == {}, bag.import_errors
    return bag.get_dag


@pytest.fixture
def alert_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in CHANNEL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOGSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LOGSTREAM_ALERT_SINK", "webhook")
    monkeypatch.setenv("LOGSTREAM_ALERT_TIMEOUT_S", "1")
    monkeypatch.setenv("LOGSTREAM_ALERT_RETRIES", "2")
    return monkeypatch


def test_failed_task_pages_the_webhook(failing_dag, alert_env):
    with Receiver() as receiver:
        alert_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/hook")
        run = failing_dag("alert_dag_webhook").test(logical_date=datetime(2026, 1, 2, tzinfo=UTC))

    assert run.state == "failed"
    [alert] = receiver.json_bodies()
    assert alert["source"] == "logstream"
    assert (alert["kind"], alert["severity"]) == ("pipeline_failure", "critical")
    assert alert["dedup_key"] == f"pipeline:alert_dag_webhook:explode:{run.run_id}"
    assert alert["details"]["dag_id"] == "alert_dag_webhook"
    assert alert["details"]["task_id"] == "explode"
    assert alert["details"]["run_id"] == run.run_id
    assert alert["details"]["error"].startswith("RuntimeError: disk full on /data xxx")
    assert len(alert["details"]["error"]) < 2_100  # bounded, not the 10 kB message
    assert alert["summary"].startswith("alert_dag_webhook.explode failed: RuntimeError: disk")
    assert (
        f"/dags/alert_dag_webhook/runs/{quote(run.run_id)}/tasks/explode" in (alert["links"]["log"])
    )
    assert alert["links"]["run"].endswith(
        f"/dags/alert_dag_webhook/runs/{quote(run.run_id, safe='')}"
    )


def test_hanging_receiver_does_not_hold_the_run(failing_dag, alert_env):
    with Receiver(delay_s=120) as hanging:
        alert_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{hanging.url}/hook")
        started = time.monotonic()
        run = failing_dag("alert_dag_hanging").test(logical_date=datetime(2026, 1, 2, tzinfo=UTC))
        elapsed = time.monotonic() - started

    assert run.state == "failed"
    assert len(hanging.requests) == 2  # alert_retries attempts, each cut off by the timeout
    # the alert costs ~2 x 1 s timeouts + 0.5 s backoff; the rest is dag.test() itself. A
    # callback waiting on the receiver would take its full 120 s.
    assert elapsed < 60
