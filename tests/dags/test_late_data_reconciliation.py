"""``late_data_reconciliation`` runs for real through Airflow (``dag.test()``): a UI-style trigger
with a two-day range maps one spark-submit per day against ``spark_default``, publishes every
family's partitions and the reports, returns each day's summary in XCom and updates the asset
that schedules ``data_quality``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from logstream import catalog
from tests.integration.test_reconciliation import build_log_events, build_user_events, write_bronze

DAG_ID = "late_data_reconciliation"
FIRST, SECOND = date(2026, 3, 10), date(2026, 3, 11)


def test_dag_wiring(dag_bag):
    dag = dag_bag.get_dag(DAG_ID)
    assert dag.catchup is True
    assert dag.max_active_runs == 1
    assert set(dag.params.keys()) == {"start_date", "end_date", "origin"}
    assert {t.task_id for t in dag.tasks} == {"plan_days", "reconcile", "publish"}
    assert [a.name for a in dag.get_task("publish").outlets] == ["logstream_reconciled"]
    assert dag.get_task("reconcile").upstream_task_ids == {"plan_days"}


def test_a_ui_triggered_range_reconciles_each_day(
    dag_bag, airflow_env, spark, settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    data_root, reports = tmp_path / "data", tmp_path / "reports"
    local = settings.replace(data_root=str(data_root), reports_dir=str(reports))
    # the first day and the first minutes of the second (traffic crosses midnight)
    write_bronze(spark, local, build_log_events(FIRST), build_user_events(FIRST))
    for name, value in {
        "LOGSTREAM_DATA_ROOT": str(data_root),
        "LOGSTREAM_REPORTS_DIR": str(reports),
        "LOGSTREAM_SHUFFLE_PARTITIONS": "2",
        "LOGSTREAM_SPARK_DRIVER_MEMORY": "1g",
        # each spark-submit is a short-lived JVM: C1-only JIT halves its CPU on a small day
        "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1",
    }.items():
        monkeypatch.setenv(name, value)
    dag = dag_bag.get_dag(DAG_ID)
    for task in dag.tasks:  # a failure should fail the test now, not after retry delays
        monkeypatch.setattr(task, "retries", 0)

    # as the UI's trigger form does: now, with the range in the params
    run = dag.test(run_conf={"start_date": FIRST.isoformat(), "end_date": SECOND.isoformat()})

    assert run.state == "success"
    for day in (FIRST, SECOND):
        for family in catalog.FAMILIES:
            folder = data_root / "reconciled" / family.name / f"window_date={day}"
            assert (folder / "part-00000.parquet").is_file(), folder
        assert (data_root / "reconciliation_report" / f"report_date={day}").is_dir()
    first = json.loads((reports / "reconciliation" / f"{FIRST}.json").read_text())
    second = json.loads((reports / "reconciliation" / f"{SECOND}.json").read_text())
    # no streamed tables were written: every reconciled window is one the stream lacks
    for report in (first, second):
        assert report["totals"]["windows"] == report["totals"]["windows_corrected"] > 0
    assert first["late"]["events"]["late_events"] > 0

    summaries = _xcoms(run.run_id, "reconcile")
    assert sorted(s["day"] for s in summaries) == [FIRST.isoformat(), SECOND.isoformat()]
    by_day = {s["day"]: s for s in summaries}
    assert by_day[FIRST.isoformat()]["summary"] == first["summary"]
    assert by_day[FIRST.isoformat()]["windows_corrected"] == first["totals"]["windows_corrected"]
    assert _xcoms(run.run_id, "publish")[0]["days"] == [FIRST.isoformat(), SECOND.isoformat()]
    assert _asset_event_days(run.run_id) == [FIRST.isoformat(), SECOND.isoformat()]


def _xcoms(run_id: str, task_id: str) -> list:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            run_id=run_id, dag_ids=DAG_ID, task_ids=task_id, key="return_value"
        )
        return [XComModel.deserialize_value(row) for row in session.scalars(query).all()]


def _asset_event_days(run_id: str) -> list[str]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "logstream_reconciled", AssetEvent.source_run_id == run_id)
        ).all()
        assert len(events) == 1
        return events[0].extra["days"]
