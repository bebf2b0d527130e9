"""Hourly latency report (SPEC §7.3): plan the hour, submit jobs/latency_report.py, publish the
report's address and alert levels. The report itself lives in logstream.reports.latency."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from logstream.alerts import task_failure_alert
from logstream.assets import LATENCY_REPORT
from logstream.orchestration import submit_job, task_settings

log = logging.getLogger(__name__)

DOC_MD = """
### latency_report

Every hour (at :05 UTC) reports the **previous full hour**: p50 / p95 / p99 / max / avg of the
event-to-Kafka, Kafka-to-processed and end-to-end latency per service, and of the streaming
queries' batch duration, watermark delay and lag. WARNING and CRITICAL services are alerted.

* **Reads:** `<data_root>/events`, `<status_dir>/history/*/<day>.jsonl`.
* **Writes:** the `latency_report` table (partitioned by `report_date`; a re-run replaces the
  hour) and `<reports_dir>/latency/<YYYY-MM-DDTHH>.html` (and `latest.html`); the `publish`
  task's log shows `Latency report: file://...`.
* **Run:** Trigger DAG w/ `hour` = `2026-11-25T13` (UTC), or
  `spark-submit jobs/latency_report.py --hour 2026-11-25T13 [--set key=value ...]`.

Stages, levels and alerts in full: `docs/dags/latency_report.md`.
"""


@dag(
    dag_id="latency_report",
    schedule="5 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["logstream", "latency", "reports"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": task_failure_alert,
    },
    params={
        "hour": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}$",
            title="Hour (UTC)",
            description="The hour to report, e.g. 2026-11-25T13; empty = the previous full hour.",
        )
    },
    doc_md=DOC_MD,
)
def latency_report():
    @task
    def plan(params=None, data_interval_end=None, logical_date=None, dag_run=None) -> str:
        """The hour to report: the param, or the full hour before the run."""
        from logstream.reports.latency import report_hour_for_run

        reference = data_interval_end or logical_date or getattr(dag_run, "run_after", None)
        return report_hour_for_run((params or {}).get("hour"), reference)

    @task(outlets=[LATENCY_REPORT])
    def build_report(hour: str) -> str:
        """Submit jobs/latency_report.py for the hour: the table rows and the HTML report."""
        arguments = ["--hour", hour]
        submit_job(task_settings(), "latency_report.py", arguments, name="logstream-latency-report")
        return hour

    @task
    def publish(hour: str, ti=None) -> dict:
        """Log the report's address and deliver WARNING/CRITICAL levels as alerts."""
        from logstream.reports.latency import publish_report

        links = {"airflow_log": getattr(ti, "log_url", None) or ""}
        result = publish_report(task_settings(), hour, links)
        log.info("Latency report: %s", result["report"])
        log.info("Levels %s; alerts sent: %s", result["levels"], result["alerts"] or "none")
        return result

    publish(build_report(plan()))


latency_report()
