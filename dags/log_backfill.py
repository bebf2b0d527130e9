"""Backfill archived log files into bronze, then reconcile the days they touch (SPEC §7.2).
Wiring only: the landing lives in logstream.batch.backfill, the Spark work in
jobs/backfill_files.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from logstream.alerts import task_failure_alert

RECONCILIATION_DAG = "late_data_reconciliation"

DOC_MD = """
### log_backfill

Lands archived log files (nginx/Apache access logs, JSON application logs, ... rotated out of
the live pipeline or never sent through Kafka) into the bronze tables the stream writes, with
the stream's parse and quarantine, **exactly once per file and line**: a re-run, or a retry
after a crash, adds nothing. Then it triggers `late_data_reconciliation` for the event days the
files hold, so historical days get reconciled metric tables.

* **Reads:** the files matching `path`: a file, a folder (every file below it) or a Hadoop glob,
  on any Hadoop URI (`/data/logs/*.log`, `file:///...`, `hdfs://nn/logs/2015/`,
  `s3a://bucket/nginx/access-2015-*.gz`; `.gz`/`.bz2` are decompressed; names starting with `_`
  or `.` are skipped). Each line is one record, parsed with `format` (`auto` detects JSON or
  access log per line); `service` names the service of access-log lines. Lines are not checked
  against the wall clock: an archive is old by design.
* **Writes:** bronze `events` (partitions by event date and hour; `event_id` =
  `<file URI>:0:<line number>`, `kafka_timestamp` and `lateness_ms` null) and `quarantine`
  (partition = the landing day), plus the ledger of what is landed under
  `<data_root>/events/_commits/backfill/`. With `start_date`/`end_date` (UTC, inclusive; either
  may stay empty) only events of those days land; the others are counted as
  `skipped_out_of_range` and a later run can land them. Rejected lines are quarantined by the
  first run that reads their file. The `land` task's XCom (and
  `<reports_dir>/backfill/<run id>.json`) holds the summary: files, lines, events landed,
  quarantined, skipped (already landed / out of range), days touched, changed files.
* **Then:** `reconcile` triggers `late_data_reconciliation` with `start_date`/`end_date` = the
  first and last event day the files touched (split into runs of at most 92 days; days after
  today are left out; `origin: backfill`, so that `data_quality` checks only their reconciled
  tables); skipped when no day was touched. Watch those runs in that DAG.
* **Run from the UI:** *Trigger DAG* -> fill `path` (and optionally `format`, `service`,
  `start_date`, `end_date`). Manual only; one backfill at a time.
* **CLI:** `airflow dags trigger log_backfill -c '{"path": "s3a://bucket/nginx/2015-*.gz",
  "format": "auto", "service": "shop", "start_date": "2015-12-01", "end_date": "2015-12-31"}'`,
  or without Airflow: `spark-submit jobs/backfill_files.py --path '...' [--format auto]
  [--service shop] [--start-date ...] [--end-date ...] [--set key=value ...]`.
* **Limits:** a file that changed since it was landed (size or modification time) is skipped
  and listed in `changed_files`: backfill closed (rotated) files, from one place. Do not backfill
  lines the stream already received through Kafka (they would be in bronze twice, under two ids).
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
        """spark-submit jobs/backfill_files.py; returns the job's summary."""
        import json

        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from logstream.batch.backfill import BackfillRequest, job_arguments, summary_file
        from logstream.config import Settings
        from logstream.errors import ConfigError
        from logstream.runtime.submit import submit_job

        settings = Settings.load()
        names = ("path", "format", "service", "start_date", "end_date")
        try:
            request = BackfillRequest.from_params(*[(params or {}).get(name) for name in names])
            request.parse_options(settings)
            summary = summary_file(settings, run_id)
        except ConfigError as exc:
            raise AirflowFailException(str(exc)) from None  # bad params: retrying cannot help
        summary.unlink(missing_ok=True)  # an earlier try's summary must not pass for this one
        arguments = job_arguments(settings, request, str(summary))
        submit_job(settings, "backfill_files.py", arguments, name="logstream-backfill")
        if not summary.is_file():
            raise AirflowException(
                f"the backfill job passed but left no summary at {summary}: reports_dir must be "
                "a folder the Spark driver and this worker share (client deploy mode does that)"
            )
        return json.loads(summary.read_text())

    @task
    def plan_reconciliation(summary: dict) -> list[dict]:
        """The date ranges to reconcile: the first to the last day touched (none: skip)."""
        from logstream.batch.backfill import reconcile_ranges

        ranges = reconcile_ranges(summary["days_touched"], today=datetime.now(UTC).date())
        return [
            {"start_date": lo.isoformat(), "end_date": hi.isoformat(), "origin": "backfill"}
            for lo, hi in ranges
        ]

    TriggerDagRunOperator.partial(
        task_id="reconcile",
        trigger_dag_id=RECONCILIATION_DAG,
        trigger_run_id="log_backfill__{{ run_id }}__{{ ti.map_index }}",
        skip_when_already_exists=True,
    ).expand(conf=plan_reconciliation(land()))


log_backfill()
