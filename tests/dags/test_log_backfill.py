"""``log_backfill`` runs for real through Airflow (``dag.test()``): a UI-style trigger spark-submits
the backfill job against ``spark_default``, returns its summary in XCom and triggers
``late_data_reconciliation`` for the first to the last event day it touched."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

DAG_ID = "log_backfill"
# an Apache combined access log of two days in 2015 (and one line that is not one)
ACCESS_LOG = (
    '93.180.71.3 - - [17/May/2015:08:05:32 +0000] "GET /downloads/product_1 HTTP/1.1" 304 0 "-" '
    '"Debian APT-HTTP/1.3 (0.8.16~exp12ubuntu10.21)"\n'
    "garbage\n"
    '80.91.33.133 - - [18/May/2015:00:30:00 +0000] "GET /downloads/product_1 HTTP/1.1" 404 336 '
    '"-" "Debian APT-HTTP/1.3 (0.8.16~exp12ubuntu10.17)"\n'
)


def test_dag_wiring(dag_bag):
    dag = dag_bag.get_dag(DAG_ID)
    assert type(dag.timetable).__name__ == "NullTimetable"  # manual trigger only
    assert dag.max_active_runs == 1
    assert set(dag.params.keys()) == {"path", "format", "service", "start_date", "end_date"}
    assert dag.params["format"] == "auto"
    assert {t.task_id for t in dag.tasks} == {"land", "plan_reconciliation", "reconcile"}
    assert dag.get_task("plan_reconciliation").upstream_task_ids == {"land"}
    reconcile = dag.get_task("reconcile")
    assert reconcile.upstream_task_ids == {"plan_reconciliation"}
    assert reconcile.partial_kwargs["trigger_dag_id"] == "late_data_reconciliation"


def test_a_ui_triggered_backfill_lands_and_triggers_reconciliation(
    dag_bag, airflow_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "access.log").write_text(ACCESS_LOG)
    data_root, reports = tmp_path / "data", tmp_path / "reports"
    for name, value in {
        "LOGSTREAM_DATA_ROOT": str(data_root),
        "LOGSTREAM_REPORTS_DIR": str(reports),
        "LOGSTREAM_SHUFFLE_PARTITIONS": "2",
        "LOGSTREAM_SPARK_DRIVER_MEMORY": "1g",
        # spark-submit is a short-lived JVM: C1-only JIT halves its CPU on small inputs
        "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1",
    }.items():
        monkeypatch.setenv(name, value)
    dag = dag_bag.get_dag(DAG_ID)
    for task in dag.tasks:  # a failure should fail the test now, not after retry delays
        monkeypatch.setattr(task, "retries", 0)

    run = dag.test(run_conf={"path": f"file://{archive}/*.log", "service": "shop"})

    assert run.state == "success"
    summary = _xcoms(run.run_id, "land")[0]
    assert {key: summary[key] for key in ("files", "lines", "events_landed", "quarantined")} == {
        "files": 1,
        "lines": 3,
        "events_landed": 2,
        "quarantined": 1,
    }
    assert summary["days_touched"] == ["2015-05-17", "2015-05-18"]
    events = duckdb.sql(
        "SELECT kafka_offset, service, event_date FROM read_parquet("
        f"'{data_root}/events/*/*/*.parquet', hive_partitioning = true) ORDER BY kafka_offset"
    ).fetchall()
    assert [(offset, service, str(day)) for offset, service, day in events] == [
        (0, "shop", "2015-05-17"),
        (2, "shop", "2015-05-18"),
    ]
    assert _xcoms(run.run_id, "plan_reconciliation")[0] == [
        {"start_date": "2015-05-17", "end_date": "2015-05-18", "origin": "backfill"}
    ]
    # the reconciliation run is queued for the scheduler with the range as its params
    triggered = _dag_runs("late_data_reconciliation", f"log_backfill__{run.run_id}__0")
    try:
        assert [r.conf for r in triggered] == [
            {"start_date": "2015-05-17", "end_date": "2015-05-18", "origin": "backfill"}
        ]
    finally:
        _delete_runs(triggered)


def _xcoms(run_id: str, task_id: str) -> list:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            run_id=run_id, dag_ids=DAG_ID, task_ids=task_id, key="return_value"
        )
        return [XComModel.deserialize_value(row) for row in session.scalars(query).all()]


def _dag_runs(dag_id: str, run_id: str) -> list:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        ).all()
        session.expunge_all()
        return list(runs)


def _delete_runs(runs: list) -> None:
    """The queued run would otherwise stay in the session's metadata DB for other tests."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        for run in runs:
            session.execute(delete(DagRun).where(DagRun.id == run.id))
