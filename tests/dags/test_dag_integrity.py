"""Every DAG file imports cleanly and follows the house rules (tags, retries, docs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_dag_files_import_without_errors(dag_bag):
    assert dag_bag.import_errors == {}
    dag_files = {path.stem for path in DAGS_FOLDER.glob("*.py") if not path.name.startswith("_")}
    # one DAG per file, file name = dag_id
    assert set(dag_bag.dag_ids) == dag_files
    assert {"log_stream_supervisor", "log_backfill"} <= set(dag_bag.dag_ids)


def test_every_dag_has_tags_retries_and_docs(dag_bag):
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} lacks doc_md"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id} has retries={task.retries}"


def test_every_dag_links_its_operator_guide(dag_bag):
    for dag_id, dag in dag_bag.dags.items():
        guide = f"docs/dags/{dag_id}.md"
        assert guide in dag.doc_md, f"{dag_id}'s doc_md does not link {guide}"
        assert (DAGS_FOLDER.parent / guide).is_file(), f"{guide} is missing"


def test_dags_submit_jobs_only_through_logstream_orchestration():
    """One submit path: spark-submit settings and arguments come from submit_job alone."""
    for path in DAGS_FOLDER.glob("*.py"):
        source = path.read_text()
        assert "SparkSubmit" not in source, f"{path.name} calls spark-submit itself"
        assert "spark_conf" not in source, f"{path.name} builds its own Spark configuration"


def test_no_dag_catches_up_on_its_first_unpause(dag_bag):
    """Whatever the start date, the first scheduled run of every DAG is its latest interval (no
    DAG here runs less often than daily), not a run per interval since the start date."""
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable
    from airflow.timetables.base import TimeRestriction

    now = datetime.now(UTC)
    for dag_id, dag in dag_bag.dags.items():
        timetable = decode_timetable(encode_timetable(dag.timetable))  # what the scheduler runs
        if not timetable.can_be_scheduled:
            continue
        first = timetable.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=dag.catchup),
        )
        assert first is not None, dag_id
        assert now - timedelta(days=1) <= first.run_after <= now + timedelta(days=1), (
            f"{dag_id}'s first run would be at {first.run_after}, not the latest interval"
        )
