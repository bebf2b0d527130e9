"""The batch jobs on the three-node standalone cluster with every root on shared storage, once on
HDFS (MiniDFSCluster) and once on S3 (s3proxy through ``s3a://``): ``data_root``,
``status_dir``, ``reports_dir`` and ``checkpoint_root`` all remote, nothing on the local disk.

Each job is submitted the way its DAG submits it (:func:`logstream.orchestration.submit_job`:
Airflow's SparkSubmitHook through the ``spark_default`` connection, here naming the cluster's
master; the driver runs where the task runs, the executors on the workers), and its output is
checked against the independent oracles of the integration suite:

* ``jobs/latency_report.py``: its table equals the plain-Python oracle over the same bronze events
  and progress history (tests/integration/test_latency_report.py); the HTML page, ``latest.html``
  and the JSON summary are on the shared store and the DAG's delivery reads them back;
* ``jobs/reconcile_day.py``: the reconciled tables equal the oracle over all valid events
  (tests/integration/test_reconciliation.py); the change report is on the shared store and the
  DAG-side summary reads it;
* ``jobs/quality_check.py``: a clean day passes every suite, a broken day fails exactly the
  expectations it breaks (tests/integration/test_quality.py); verdicts and Data Docs pages are on
  the shared store.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from logstream import schemas
from logstream.batch.quality import load_result
from logstream.batch.reconcile import has_bronze, run_summary
from logstream.batch.reconcile_report import report_path
from logstream.config import Settings
from logstream.orchestration import submit_job
from logstream.reports import latency
from logstream.runtime.jars import spark_home
from logstream.runtime.java import java_home
from logstream.runtime.spark import build_spark_session
from logstream.storage.fs import Storage
from logstream.storage.tables import read_table, table_path
from logstream.stream import history
from tests.integration import test_latency_report as latency_world
from tests.integration import test_quality as quality_days
from tests.integration import test_reconciliation as reconciliation

pytestmark = pytest.mark.cluster

KINDS = ("hdfs", "s3a")


@pytest.fixture
def on_master(spark_cluster, on_cluster, remote_storage, monkeypatch) -> Settings:
    """Settings and the task environment of a DAG task whose jobs go to the cluster's master in
    client mode, with the shared stores' endpoints and credentials."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_DEFAULT",
        json.dumps({"conn_type": "spark", "host": spark_cluster.master_url}),
    )
    monkeypatch.setenv("JAVA_HOME", java_home())
    monkeypatch.setenv("PATH", f"{spark_home() / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return remote_storage.settings(on_cluster.replace(spark_deploy_mode="client"))


def shared(stores, base: Settings, kind: str, name: str) -> Settings:
    """``base`` with its tables, status files, reports and checkpoints all on ``kind``."""
    root = stores.root(kind, name)
    return base.replace(
        data_root=f"{root}/data",
        status_dir=f"{root}/status",
        reports_dir=f"{root}/reports",
        checkpoint_root=f"{root}/checkpoints",
    )


@pytest.fixture
def session(spark, on_master: Settings):
    """The test session's Spark (which writes the inputs and reads the outputs), with the
    stores' s3a endpoint and credentials applied."""
    return build_spark_session("logstream-tests", on_master)


def completed_apps(cluster) -> list[str]:
    return [app["name"] for app in cluster.state().get("completedapps", [])]


@pytest.mark.parametrize("kind", KINDS)
def test_latency_report_on_the_cluster(session, on_master, remote_storage, spark_cluster, kind):
    run = shared(remote_storage, on_master, kind, f"latency-{kind}")
    rng = random.Random(20261125)
    events = latency_world.make_events(rng)
    fields = schemas.EVENTS.fieldNames()
    (
        session.createDataFrame([tuple(e[f] for f in fields) for e in events], schemas.EVENTS)
        .write.partitionBy("event_date", "event_hour")
        .parquet(table_path(run, "events"))
    )
    progress = latency_world.make_history(rng)
    storage = Storage(run)
    for line in progress:
        history.append_history(run.status_dir, line, storage=storage)
    hour = latency_world.HOUR.strftime("%Y-%m-%dT%H")

    submit_job(run, "latency_report.py", ["--hour", hour], "logstream-latency-report")

    assert "logstream-latency-report" in completed_apps(spark_cluster)
    samples = latency_world.oracle_samples(events, progress, latency_world.HOUR)
    latency_world.assert_matches_oracle(
        latency_world.table_rows(session, run, latency_world.HOUR), samples
    )
    folder = f"{run.reports_dir}/latency"
    page = storage.read_text(f"{folder}/{hour}.html")
    assert page and all(service in page for service in latency_world.SERVICES)
    assert storage.read_text(f"{folder}/latest.html") == page
    delivered = latency.publish_report(run, hour)
    assert delivered["report"] == f"{folder}/{hour}.html" and delivered["alerts"], delivered


@pytest.mark.parametrize("kind", KINDS)
def test_reconciliation_on_the_cluster(session, on_master, remote_storage, spark_cluster, kind):
    run = shared(remote_storage, on_master, kind, f"reconcile-{kind}")
    day = reconciliation.DAY
    logs = reconciliation.build_log_events(day)
    user_events = reconciliation.build_user_events(day)
    assert has_bronze(run, day) is False  # listed from Python, not Spark
    reconciliation.write_bronze(session, run, logs, user_events)
    assert has_bronze(run, day) is True
    streamed = reconciliation.streamed_tables(run, logs, user_events)
    reconciliation.save_streamed(session, run, streamed)

    submit_job(run, "reconcile_day.py", ["--date", day.isoformat()], "logstream-reconcile")

    assert "logstream-reconcile" in completed_apps(spark_cluster)
    world = {"logs": logs, "user_events": user_events}
    for family in reconciliation.ENTITY_KEYS:
        source = reconciliation._source(world, family)
        want = reconciliation._of_day(reconciliation.oracle_rows(family, source))
        got = [row.asDict() for row in read_table(session, run, f"reconciled/{family}").collect()]
        count = reconciliation.COUNT_COLUMN[family]
        want_counts = {reconciliation._key(family, row): row[count] for row in want}
        got_keys = [reconciliation._key(family, row) for row in got]
        assert want_counts, family
        assert len(got_keys) == len(set(got_keys)), f"{family}: duplicate windows"
        assert {reconciliation._key(family, row): row[count] for row in got} == want_counts, family
    report = json.loads(Storage(run).read_text(report_path(run, day)))
    assert report["report_date"] == day.isoformat()
    summary = run_summary(run, day)
    assert summary["summary"] == report["summary"] and summary["windows"] > 0


def write_quality_day(session, run: Settings, local: Path, **options) -> None:
    """The day of tests/integration/test_quality.py, written locally (its writer copies a
    folder with plain file calls) and copied to ``run``'s shared data_root."""
    quality_days.write_day(session, run.replace(data_root=str(local)), quality_days.DAY, **options)
    Storage(run).put_tree(local, run.data_root)


@pytest.mark.parametrize("kind", KINDS)
def test_quality_gates_on_the_cluster(session, on_master, remote_storage, tmp_path, kind):
    day = quality_days.DAY
    fresh = ["--param", "fresh_since=2026-01-14T23:00:00+00:00"]
    clean = shared(remote_storage, on_master, kind, f"quality-clean-{kind}")
    write_quality_day(session, clean, tmp_path / "clean")
    submit_job(clean, "quality_check.py", ["--date", day.isoformat(), *fresh], "logstream-quality")
    verdict = load_result(clean, day)
    assert verdict is not None and verdict.success, verdict
    assert verdict.data_docs_index == f"{clean.reports_dir}/data_docs/index.html"
    assert "events" in (Storage(clean).read_text(verdict.data_docs_index) or "")

    broken = shared(remote_storage, on_master, kind, f"quality-broken-{kind}")
    write_quality_day(
        session,
        broken,
        tmp_path / "broken",
        broken=True,
        families=quality_days.SERVICE_REQUEST_COUNTS,
    )
    suites = "events,response_time,processing_latency,reconciled/response_time,cross/request_counts"
    arguments = ["--date", day.isoformat(), "--suites", suites, *fresh]
    with pytest.raises(Exception, match=r"quality_check\.py"):  # exit code 1: a suite failed
        submit_job(broken, "quality_check.py", arguments, "logstream-quality")
    verdict = load_result(broken, day)
    assert verdict is not None and not verdict.success
    assert {(f.suite, f.expectation, f.column) for f in verdict.failures} == quality_days.BROKEN
    failed_pages = [suite.docs_page for suite in verdict.suites if not suite.success]
    assert failed_pages and all(
        page.startswith(f"{broken.reports_dir}/data_docs/") for page in failed_pages
    )
    assert all(Storage(broken).read_text(page) for page in failed_pages)
