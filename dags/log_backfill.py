"""Backfill archived log files into bronze, then reconcile the days they touch (SPEC §7.2):
submit jobs/backfill_files.py, plan the date ranges, trigger late_data_reconciliation. The landing
lives in logstream.batch.backfill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from logstream.alerts import task_failure_alert
from logstream.orchestration import no_retry_on, submit_job, task_settings

RECONCILIATION_DAG = "late_data_reconciliation"

DOC_MD = """
### log_backfill

Lands archived log files into bronze with the stream's parse and quarantine, **exactly once per
file and line** (a re-run adds nothing), then triggers `late_data_reconciliation` for the event
days the files hold.

* **Reads:** the files matching `path`: a file, folder or Hadoop glob on any Hadoop URI
  (`.gz`/`.bz2` decompressed), parsed with `format`; `service` names access-log lines' service.
* **Writes:** bronze `events` and `quarantine`, the ledger under
  `<data_root>/events/_commits/backfill/`, and the summary in XCom and
  `<reports_dir>/backfill/<run id>.json`. `start_date`/`end_date` limit the event days landed.
* **Run:** Trigger DAG w/ `path` (and `format`, `service`, `start_date`, `end_date`), or
  `spark-submit jobs/backfill_files.py --path '...' [--set key=value ...]`. Manual only.

What it reads, skips and triggers, and its limits, in full: `docs/dags/log_backfill.md`.
"""


@dag(
    dag_id="log_backfill",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["logstream", "backfill", "late-data", "spark"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "on_failure_callback": task_failure_alert,
    },
    params={
        "path": Param(
            type="string",
            minLength=1,
            title="Path or glob",
            description="Files to land: a file, folder or glob on any Hadoop URI, e.g. "
            "s3a://bucket/nginx/access-2015-*.gz",
        ),
        "format": Param(
            "auto",
            type="string",
            minLength=1,
            title="Format",
            description="Record format: auto (JSON or access log, per line), json, apache, "
            "nginx, or a format preset name.",
        ),
        "service": Param(
            None,
            type=["null", "string"],
            title="Service",
            description="Service of access-log lines. Empty: the default_service setting.",
        ),
        "start_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="First event day (UTC)",
            description="Land only events from this UTC day on (inclusive). Empty: no bound.",
        ),
        "end_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Last event day (UTC)",
            description="Land only events up to this UTC day (inclusive). Empty: no bound.",
        ),
    },
    doc_md=DOC_MD,
)
def log_backfill():
    @task(max_active_tis_per_dag=1)
    def land(params=None, run_id=None) -> dict:
        """Submit jobs/backfill_files.py; returns the job's summary."""
        from logstream.batch.backfill_request import (
            BackfillRequest,
            discard_summary,
            job_arguments,
            read_summary,
            summary_file,
        )
        from logstream.errors import ConfigError

        settings = task_settings()
        names = ("path", "format", "service", "start_date", "end_date")
        with no_retry_on(ConfigError):  # bad params: retrying cannot help
            request = BackfillRequest.from_params(*[(params or {}).get(name) for name in names])
            request.parse_options(settings)
            summary = summary_file(settings, run_id)
        discard_summary(settings, summary)  # an earlier try's must not pass for this one
        arguments = job_arguments(request, str(summary))
        submit_job(settings, "backfill_files.py", arguments, name="logstream-backfill")
        return read_summary(summary, settings)

    @task
    def plan_reconciliation(summary: dict) -> list[dict]:
        """The date ranges to reconcile: the first to the last day touched (none: skip)."""
        from logstream.batch.backfill_request import reconciliation_runs

        return reconciliation_runs(summary, today=datetime.now(UTC).date())

    TriggerDagRunOperator.partial(
        task_id="reconcile",
        trigger_dag_id=RECONCILIATION_DAG,
        trigger_run_id="log_backfill__{{ run_id }}__{{ ti.map_index }}",
        skip_when_already_exists=True,
    ).expand(conf=plan_reconciliation(land()))


log_backfill()
