"""The nightly and hourly work with every root on shared storage, once on HDFS (MiniDFSCluster)
and once on S3 (s3proxy through s3a://): ``data_root``, ``status_dir`` and ``reports_dir`` all
remote, nothing on the local disk.

* the latency report: its table equals the plain-Python oracle over the same bronze events and
  progress history (tests/integration/test_latency_report.py), its HTML page, ``latest.html`` and
  JSON summary are on the shared store, and the Airflow side's delivery reads them back;
* the reconciliation: the reconciled tables equal the oracle over all valid events, the change
  report is on the shared store and the DAG-side summary reads it
  (tests/integration/test_reconciliation.py);
* quality: a clean day passes, a broken day fails exactly the expectations it breaks, the verdict
  and the Data Docs pages are on the shared store (tests/integration/test_quality.py).

The jobs run in this process's local Spark session (``local[2]``): what is tested is the storage,
not the cluster (tests/cluster/test_batch_cluster.py submits the same jobs to the cluster).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from logstream import schemas
from logstream.batch.quality import load_result, run_quality, write_result
from logstream.batch.reconcile import has_bronze, reconcile_day, run_summary
from logstream.batch.reconcile_report import report_path
from logstream.config import Settings
from logstream.reports import latency
from logstream.runtime.spark import build_spark_session
from logstream.storage.fs import Storage
from logstream.storage.tables import read_table, table_path
from logstream.stream import status
from tests.integration import test_latency_report as latency_world
from tests.integration import test_quality as quality_days
from tests.integration import test_reconciliation as reconciliation
from tests.remote_storage import RemoteStores, remote_stores

pytestmark = pytest.mark.cluster

KINDS = ("hdfs", "s3a")


@pytest.fixture(scope="module")
def stores(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteStores]:
    with remote_stores(settings, tmp_path_factory.mktemp("shared-storage")) as started:
        yield started


def shared(stores: RemoteStores, settings: Settings, kind: str, name: str) -> Settings:
    """Settings whose tables, status files and reports all live on ``kind``."""
    root = stores.root(kind, name)
    return stores.settings(settings).replace(
        data_root=f"{root}/data",
        status_dir=f"{root}/status",
        reports_dir=f"{root}/reports",
        checkpoint_root=f"{root}/checkpoints",
    )


@pytest.fixture
def session(spark, stores: RemoteStores, settings: Settings):
    """The test session's Spark, with the stores' s3a endpoint and credentials applied."""
    return build_spark_session("logstream-tests", stores.settings(settings))


@pytest.mark.parametrize("kind", KINDS)
def test_latency_report_on_shared_storage(session, stores, settings, tmp_path, kind):
    run = shared(stores, settings, kind, "latency").replace(
        alert_sink=f"jsonl:{tmp_path / 'alerts.jsonl'}"
    )
    rng = random.Random(20261125)
    events = latency_world.make_events(rng)
    fields = schemas.EVENTS.fieldNames()
    (
        session.createDataFrame([tuple(e[f] for f in fields) for e in events], schemas.EVENTS)
        .write.partitionBy("event_date", "event_hour")
        .parquet(table_path(run, "events"))
    )
    history = latency_world.make_history(rng)
    storage = Storage(run)
    for line in history:
        status.append_history(run.status_dir, line, storage=storage)
    hour = latency_world.HOUR

    result = latency.run_report(session, run, hour)

    samples = latency_world.oracle_samples(events, history, hour)
    latency_world.assert_matches_oracle(latency_world.table_rows(session, run, hour), samples)
    folder = f"{run.reports_dir}/latency"
    assert result.html_path == f"{folder}/2026-11-25T13.html"
    page = storage.read_text(result.html_path)
    assert page and all(service in page for service in latency_world.SERVICES)
    assert storage.read_text(f"{folder}/latest.html") == page
    summary = json.loads(storage.read_text(result.summary_path))
    assert summary["html_url"] == result.html_path and len(summary["rows"]) == len(samples)
    delivered = latency.publish_report(run, "2026-11-25T13")
    assert delivered["report"] == result.html_path and delivered["alerts"]


@pytest.mark.parametrize("kind", KINDS)
def test_reconciliation_on_shared_storage(session, stores, settings, kind):
    run = shared(stores, settings, kind, "reconcile")
    day = reconciliation.DAY
    logs = reconciliation.build_log_events(day)
    user_events = reconciliation.build_user_events(day)
    assert has_bronze(run, day) is False  # listed from Python, not Spark
    reconciliation.write_bronze(session, run, logs, user_events)
    assert has_bronze(run, day) is True
    reconciliation.save_streamed(
        session, run, reconciliation.streamed_tables(run, logs, user_events)
    )

    reconcile_day(session, run, day)

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
        assert {reconciliation._key(family, row): row[count] for row in got} == want_counts
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
def test_quality_on_shared_storage(session, stores, settings, tmp_path, kind):
    day = quality_days.DAY
    clean = shared(stores, settings, kind, "quality-clean")
    write_quality_day(session, clean, tmp_path / "clean")
    verdict = run_quality(session, clean, day, now=quality_days.NOW, run_id="clean-run")
    assert verdict.success, verdict.summary()
    docs = f"{clean.reports_dir}/data_docs"
    assert verdict.data_docs_index == f"{docs}/index.html"
    storage = Storage(clean)
    assert "events" in (storage.read_text(verdict.data_docs_index) or "")
    assert write_result(clean, verdict) == f"{clean.reports_dir}/quality/{day.isoformat()}.json"
    assert load_result(clean, day).run_id == "clean-run"

    broken = shared(stores, settings, kind, "quality-broken")
    write_quality_day(
        session,
        broken,
        tmp_path / "broken",
        broken=True,
        families=quality_days.SERVICE_REQUEST_COUNTS,
    )
    suites = "events,response_time,processing_latency,reconciled/response_time,cross/request_counts"
    verdict = run_quality(session, broken, day, suites, now=quality_days.NOW)
    assert not verdict.success
    assert {(f.suite, f.expectation, f.column) for f in verdict.failures} == quality_days.BROKEN
    failed_pages = [suite.docs_page for suite in verdict.suites if not suite.success]
    assert failed_pages and all(
        page.startswith(f"{broken.reports_dir}/data_docs/") for page in failed_pages
    )
    assert all(Storage(broken).read_text(page) for page in failed_pages)
