"""Hourly latency report (SPEC §7.3). Wiring only; logic lives in logstream.batch.latency."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Param, dag, task

from logstream.alerts import task_failure_alert
from logstream.assets import LATENCY_REPORT

log = logging.getLogger(__name__)

JOB = Path(__file__).resolve().parents[1] / "jobs" / "latency_report.py"

DOC_MD = """
### latency_report

Every hour (at :05, UTC) reports the **previous full hour**: per service and per stage, the
p50 / p95 / p99 / max / avg of

* `event_to_kafka_ms` (Kafka timestamp - event time), `kafka_to_processed_ms` (processing time -
  Kafka timestamp), `end_to_end_ms` (processing time - event time), per service and over all
  services (`*`), from the bronze `events` of that event-time hour;
* `batch_duration_ms`, `watermark_delay_ms`, `kafka_lag_records`, `event_time_lag_ms` per
  streaming query, from the progress history the streaming job appends under
  `<status_dir>/history/`.

Latency stages get the SPEC §5.1.8 level of their average (CRITICAL > 2000 ms, WARNING > 1000,
INFO > 500, else OK); WARNING and CRITICAL services are sent as alerts with the dedup key
`latency:<service>:<stage>:<hour>` and a link to the report.

* **Reads:** `<data_root>/events`, `<status_dir>/history/*/<day>.jsonl`.
* **Writes:** the `latency_report` table (`<data_root>/latency_report`, partitioned by
  `report_date`; a re-run replaces the hour's rows), the HTML report
  `<reports_dir>/latency/<YYYY-MM-DDTHH>.html` (and `latest.html`) with a summary table and
  charts. The `publish` task's log shows `Latency report: file://...`; open that link.
* **Run:** it runs by itself once unpaused (no catch-up). For another hour, **Trigger DAG** with
  the param `hour` = `2026-11-25T13` (UTC), or from the CLI:
  `airflow dags trigger latency_report -c '{"hour": "2026-11-25T13"}'`; without Airflow:
  `spark-submit jobs/latency_report.py --hour 2026-11-25T13`.
"""


@dag(
    dag_id="latency_report",
    schedule="5 * * * *",
    start_date=datetime(2026, 1, 1),
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
    @task(multiple_outputs=True)
    def plan(params=None, data_interval_end=None, logical_date=None, dag_run=None) -> dict:
        """The hour to report and the spark-submit settings (resolved on the worker)."""
        from logstream.batch.latency import report_hour_for_run
        from logstream.config import Settings
        from logstream.runtime.spark import spark_conf

        reference = data_interval_end or logical_date or getattr(dag_run, "run_after", None)
        hour = report_hour_for_run((params or {}).get("hour"), reference)
        settings = Settings.load()
        conf = spark_conf(settings)
        conf.pop("spark.master")  # the spark_default connection names the master
        jars = conf.pop("spark.jars")
        arguments = ["--hour", hour]
        for name in ("data_root", "status_dir", "reports_dir"):
            arguments += ["--set", f"{name}={getattr(settings, name)}"]
        return {"hour": hour, "conf": conf, "jars": jars, "application_args": arguments}

    planned = plan()

    build_report = SparkSubmitOperator(
        task_id="build_report",
        application=str(JOB),
        conn_id="spark_default",
        name="logstream-latency-report",
        conf=planned["conf"],
        jars=planned["jars"],
        application_args=planned["application_args"],
        outlets=[LATENCY_REPORT],
    )

    @task
    def publish(hour: str, ti=None) -> dict:
        """Log the report's address and deliver WARNING/CRITICAL levels as alerts."""
        from logstream.batch.latency import publish_report
        from logstream.config import Settings

        links = {"airflow_log": getattr(ti, "log_url", None) or ""}
        result = publish_report(Settings.load(), hour, links)
        log.info("Latency report: %s", result["report"])
        log.info("Levels %s; alerts sent: %s", result["levels"], result["alerts"] or "none")
        return result

    build_report >> publish(planned["hour"])


latency_report()
