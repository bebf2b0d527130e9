"""``late_data_reconciliation`` runs for real through Airflow (``dag.test()``): a UI-style trigger
with a two-day range maps one spark-submit per day against ``spark_default``, publishes every
family's partitions and the reports, returns each day's summary in XCom and updates the asset
that schedules ``data_quality``. A day without bronze data submits nothing."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest

from logstream import catalog
from tests.dags.conftest import spark_submits
from tests.integration.test_reconciliation import build_log_events, build_user_events, write_bronze

DAG_ID = "late_data_reconciliation"
FIRST, SECOND = date(2026, 3, 10), date(2026, 3, 11)
EMPTY = date(2026, 3, 20)  # no bronze partition of this day or the next


def test_dag_wiring(dag_bag):
    dag = dag_bag.get_dag(DAG_ID)
    assert dag.catchup is False  # the first unpause runs the latest night only
    assert dag.max_active_runs == 1
    assert set(dag.params.keys()) == {"start_date", "end_date", "origin"}
    assert {t.task_id for t in dag.tasks} == {"plan_days", "reconcile", "publish"}
    assert [a.name for a in dag.get_task("publish").outlets] == ["logstream_reconciled"]
    assert dag.get_task("reconcile").upstream_task_ids == {"plan_days"}


def _dag(dag_bag, monkeypatch: pytest.MonkeyPatch, data_root: Path, reports: Path):
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
    return dag


def test_a_ui_triggered_range_reconciles_each_day(
    dag_bag,
    airflow_env,
    spark,
    settings,
    spark_submit_log: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
):
    data_root, reports = tmp_path / "data", tmp_path / "reports"
    local = settings.replace(data_root=str(data_root), reports_dir=str(reports))
    # the first day and the first minutes of the second (traffic crosses midnight)
    write_bronze(spark, local, build_log_events(FIRST), build_user_events(FIRST))
    dag = _dag(dag_bag, monkeypatch, data_root, reports)
    submitted = len(spark_submits(spark_submit_log))

    # as the UI's trigger form does: now, with the range in the params
    run = dag.test(run_conf={"start_date": FIRST.isoformat(), "end_date": SECOND.isoformat()})

    assert run.state == "success"
    calls = spark_submits(spark_submit_log)[submitted:]
    assert sorted(call[call.index("--date") + 1] for call in calls) == ["2026-03-10", "2026-03-11"]
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


def test_a_day_without_bronze_data_submits_nothing_and_publishes_nothing(
    dag_bag,
    airflow_env,
    spark,
    settings,
    spark_submit_log: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
):
    data_root, reports = tmp_path / "data", tmp_path / "reports"
    local = settings.replace(data_root=str(data_root), reports_dir=str(reports))
    write_bronze(spark, local, build_log_events(FIRST), build_user_events(FIRST))  # other days
    dag = _dag(dag_bag, monkeypatch, data_root, reports)
    submitted = len(spark_submits(spark_submit_log))

    started = time.monotonic()
    # both dates: the session's DAG object may keep the params an earlier test triggered with
    run = dag.test(run_conf={"start_date": EMPTY.isoformat(), "end_date": EMPTY.isoformat()})
    elapsed = time.monotonic() - started

    assert run.state == "success"
    assert spark_submits(spark_submit_log)[submitted:] == []  # no driver was started
    assert elapsed < 60, f"a no-op took {elapsed:.0f} s"
    assert _xcoms(run.run_id, "reconcile") == [
        {
            "day": "2026-03-20",
            "reconciled": False,
            "summary": "no bronze data for 2026-03-20: nothing to reconcile",
            "windows": 0,
            "windows_corrected": 0,
            "only_in_stream": 0,
            "late_events": 0,
            "max_lateness_ms": None,
        }
    ]
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["publish"] == "skipped"  # no asset event: data_quality is not triggered
    assert _asset_events(run.run_id) == []
    assert not (data_root / "reconciled").exists()
    assert not (reports / "reconciliation").exists()


def _xcoms(run_id: str, task_id: str) -> list:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            run_id=run_id, dag_ids=DAG_ID, task_ids=task_id, key="return_value"
        )
        return [XComModel.deserialize_value(row) for row in session.scalars(query).all()]


def _asset_events(run_id: str) -> list[dict]:
    """The extras of the ``logstream_reconciled`` events the run emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "logstream_reconciled", AssetEvent.source_run_id == run_id)
        ).all()
        return [dict(event.extra) for event in events]


def _asset_event_days(run_id: str) -> list[str]:
    events = _asset_events(run_id)
    assert len(events) == 1
    return events[0]["days"]
