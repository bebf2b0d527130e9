"""data_quality for real through Airflow (dag.test()): the validate task spark-submits the job
against spark_default; a broken day fails the run, pages a local HTTP receiver with the failed
suites and never publishes; a clean day publishes the quality-passed asset."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from logstream.batch.quality import SERVICE_REQUEST_COUNTS, load_result
from tests.helpers import Receiver
from tests.integration.test_quality import DAY, write_day

#: the suites these runs check: the broken ones, and the cross-table check that still holds
SUITES = "events,response_time,processing_latency,cross/request_counts"
LOGICAL_DATE = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def days(spark, settings, tmp_path_factory) -> dict[str, Path]:
    """A clean and a broken copy of DAY (events + the per-service request-count families)."""
    roots = {}
    for name, broken in (("clean", False), ("broken", True)):
        root = tmp_path_factory.mktemp(f"dq-{name}")
        write_day(
            spark,
            settings.replace(data_root=str(root / "data")),
            DAY,
            broken=broken,
            families=SERVICE_REQUEST_COUNTS,
        )
        roots[name] = root
    return roots


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A JSON webhook on a free loopback port that records what it receives."""
    with Receiver() as server:
        yield server


def run_data_quality(dag_bag, monkeypatch, settings, root: Path, webhook: str):
    for name, value in {
        "LOGSTREAM_DATA_ROOT": str(root / "data"),
        "LOGSTREAM_REPORTS_DIR": str(root / "reports"),
        "LOGSTREAM_ALERT_SINK": "webhook",
        "LOGSTREAM_ALERT_WEBHOOK_URL": webhook,
        "LOGSTREAM_SPARK_DRIVER_MEMORY": "1g",
        "LOGSTREAM_SHUFFLE_PARTITIONS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    dag = dag_bag.get_dag("data_quality")
    for task in dag.tasks:  # an unexpected infrastructure failure should not sleep in tests
        task.retry_delay = timedelta(seconds=1)
    run = dag.test(logical_date=LOGICAL_DATE, run_conf={"date": DAY.isoformat(), "suites": SUITES})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    return run, states


def test_broken_day_fails_alerts_and_does_not_publish(
    dag_bag, airflow_env, monkeypatch, settings, days, receiver
):
    webhook = f"{receiver.url}/"
    run, states = run_data_quality(dag_bag, monkeypatch, settings, days["broken"], webhook)

    assert run.state == "failed"
    assert states == {"plan": "success", "validate": "failed", "publish": "upstream_failed"}

    verdict = load_result(settings.replace(reports_dir=str(days["broken"] / "reports")), DAY)
    assert verdict is not None and verdict.run_id == run.run_id and not verdict.success
    assert verdict.failed_suites == ["events", "response_time", "processing_latency"]

    # one page: the quality alert replaces the generic failure alert
    (alert,) = receiver.json_bodies()
    assert alert["kind"] == "quality_failure"
    assert alert["severity"] == "critical"
    assert alert["details"]["failed_suites"] == ["events", "response_time", "processing_latency"]
    assert alert["details"]["date"] == DAY.isoformat()
    lines = "\n".join(alert["details"]["failed_expectations"])
    assert "response_time: expect_compound_columns_to_be_unique on window_start,service" in lines
    assert "processing_latency: expect_column_values_to_be_between on record_count" in lines
    assert "events: expect_column_max_to_be_between on processing_time" in lines
    docs = alert["links"]["data_docs"]
    assert docs.endswith("/data_docs/index.html") and Path(docs.removeprefix("file://")).exists()


def test_clean_day_passes_and_publishes(
    dag_bag, airflow_env, monkeypatch, settings, days, receiver
):
    webhook = f"{receiver.url}/"
    run, states = run_data_quality(dag_bag, monkeypatch, settings, days["clean"], webhook)

    assert run.state == "success"
    assert states == {"plan": "success", "validate": "success", "publish": "success"}
    assert receiver.json_bodies() == []
    verdict = load_result(settings.replace(reports_dir=str(days["clean"] / "reports")), DAY)
    assert verdict.success and verdict.run_id == run.run_id
    assert [suite.suite for suite in verdict.suites] == SUITES.split(",")

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "logstream_quality_passed")
            .all()
        )
        extras = [event.extra for event in events]
    assert any(extra.get("date") == DAY.isoformat() for extra in extras), extras
