"""The batch jobs on the standalone cluster, submitted the way the DAGs submit them
(:func:`logstream.orchestration.submit_job`: Airflow's SparkSubmitHook through the
``spark_default`` connection, here naming the cluster's master; the driver runs where the task
runs, the executors on the workers):

* ``jobs/reconcile_day.py``: the reconciled tables equal the independent oracle over all valid
  events (the world of tests/integration/test_reconciliation.py);
* ``jobs/quality_check.py``: a clean day passes every suite, a broken day fails exactly the
  expectations it breaks (the days of tests/integration/test_quality.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from logstream.batch.quality import load_result
from logstream.orchestration import submit_job
from logstream.runtime.jars import spark_home
from logstream.runtime.java import java_home
from logstream.storage.tables import read_table
from tests.integration import test_quality as quality_days
from tests.integration import test_reconciliation as reconciliation

pytestmark = pytest.mark.cluster


@pytest.fixture
def on_master(spark_cluster, on_cluster, monkeypatch):
    """Settings and the task environment of a DAG task whose jobs go to the cluster's master in
    client mode."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_DEFAULT",
        json.dumps({"conn_type": "spark", "host": spark_cluster.master_url}),
    )
    monkeypatch.setenv("JAVA_HOME", java_home())
    monkeypatch.setenv("PATH", f"{spark_home() / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return on_cluster.replace(spark_deploy_mode="client")


def test_reconciliation_on_the_cluster_equals_the_oracle(spark, on_master, spark_cluster, tmp_path):
    run = on_master.replace(reports_dir=str(tmp_path / "reports"))
    logs = reconciliation.build_log_events(reconciliation.DAY)
    user_events = reconciliation.build_user_events(reconciliation.DAY)
    reconciliation.write_bronze(spark, run, logs, user_events)
    streamed = reconciliation.streamed_tables(run, logs, user_events)
    reconciliation.save_streamed(spark, run, streamed)

    submit_job(run, "reconcile_day.py", ["--date", reconciliation.DAY.isoformat()], "reconcile")

    apps = [app["name"] for app in spark_cluster.state().get("completedapps", [])]
    assert apps, "the reconciliation must have run as an application of the cluster"
    world = {"logs": logs, "user_events": user_events}
    for family in reconciliation.ENTITY_KEYS:
        source = reconciliation._source(world, family)
        want = reconciliation._of_day(reconciliation.oracle_rows(family, source))
        got = [row.asDict() for row in read_table(spark, run, f"reconciled/{family}").collect()]
        want_keys = {reconciliation._key(family, row) for row in want}
        got_keys = [reconciliation._key(family, row) for row in got]
        assert want_keys, family
        assert len(got_keys) == len(set(got_keys)), f"{family}: duplicate windows"
        assert set(got_keys) == want_keys, family
        count = reconciliation.COUNT_COLUMN[family]
        want_counts = {reconciliation._key(family, row): row[count] for row in want}
        assert {reconciliation._key(family, row): row[count] for row in got} == want_counts
    assert any(Path(run.reports_dir).rglob("*.json")), "no change report"


def test_quality_gates_on_the_cluster(spark, on_master, tmp_path):
    day = quality_days.DAY
    fresh = ["--param", "fresh_since=2026-01-14T23:00:00+00:00"]
    clean = on_master.replace(
        data_root=str(tmp_path / "clean" / "data"), reports_dir=str(tmp_path / "clean" / "reports")
    )
    quality_days.write_day(spark, clean, day)
    submit_job(clean, "quality_check.py", ["--date", day.isoformat(), *fresh], "quality")
    verdict = load_result(clean, day)
    assert verdict is not None and verdict.success, verdict

    broken = on_master.replace(
        data_root=str(tmp_path / "broken" / "data"),
        reports_dir=str(tmp_path / "broken" / "reports"),
    )
    quality_days.write_day(
        spark, broken, day, broken=True, families=quality_days.SERVICE_REQUEST_COUNTS
    )
    suites = "events,response_time,processing_latency,reconciled/response_time,cross/request_counts"
    arguments = ["--date", day.isoformat(), "--suites", suites, *fresh]
    with pytest.raises(Exception, match=r"quality_check\.py"):  # exit code 1: a suite failed
        submit_job(broken, "quality_check.py", arguments, "quality")
    verdict = load_result(broken, day)
    assert verdict is not None and not verdict.success
    assert {(f.suite, f.expectation, f.column) for f in verdict.failures} == quality_days.BROKEN
