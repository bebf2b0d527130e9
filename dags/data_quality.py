"""Data quality gates (SPEC §7.4). Wiring only; the suites live in logstream.batch.quality."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from logstream.alerts import task_failure_alert
from logstream.assets import QUALITY_PASSED, RECONCILED

JOB = Path(__file__).resolve().parents[1] / "jobs" / "quality_check.py"

DOC_MD = """
### data_quality

Great Expectations gates over every logstream sink table, on Spark (no pandas): one suite per
table, for one day. **A failed suite fails `validate`, pages on-call, and `publish` does not run,
so the `logstream_quality_passed` asset gets no event and nothing downstream publishes.**

* **Checks:** schema (columns and types as written on disk), non-null and unique keys (unique
  window keys for every metric table), ranges (counts >= 0, 0 <= error_rate <= 100, percentages,
  health_score in {100, 80, 60, 40}, p50 <= p95 <= p99 <= max, min <= avg <= max), reason codes,
  anomaly kinds and severities, rows inside the day, freshness (the newest `processing_time` /
  `window_end` at or after `fresh_since`), and a cross-table check: reconciled request counts per
  (service, window) == bronze event counts.
* **When:** after each reconciliation (the `logstream_reconciled` asset): every suite for the
  reconciled day (the event's `date`, else yesterday UTC); and hourly at :15 UTC: the streamed
  tables of the current day (freshness of the live pipeline).
* **Reads:** `events`, `user_events`, `quarantine`, `late_events`, `late_user_events`,
  `anomalies`, each metric table and `reconciled/<metric>` under `data_root`, partition of the day.
* **Writes:** `<reports_dir>/quality/<date>.json` (the verdict: suites, failed expectations with
  column and observed value), the Data Docs site `<reports_dir>/data_docs/index.html`, and, on
  success only, an event on `logstream_quality_passed` (extra: date, suites, data_docs).
* **Alert:** on failure, a `quality_failure` alert (failed suites and expectations, Data Docs
  link) through the configured channels (`LOGSTREAM_ALERT_SINK`).
* **Run by hand:** Trigger DAG w/ config: `date` (YYYY-MM-DD, empty = yesterday UTC), `suites`
  (`all`, `streamed`, `reconciled` or comma-separated suite names), `freshness_minutes`.
  CLI: `airflow dags trigger data_quality -c '{"date": "2026-01-14"}'`, or the job itself:
  `spark-submit jobs/quality_check.py --date 2026-01-14`.
"""


def _quality_failure_alert(context) -> None:
    """validate's failure callback: the quality alert (or the generic one if the job broke)."""
    from logstream.batch.quality import quality_failure_alert

    quality_failure_alert(context)


@dag(
    dag_id="data_quality",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("15 * * * *", timezone="UTC"), assets=RECONCILED
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["logstream", "quality", "great-expectations"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": task_failure_alert,
    },
    params={
        "date": Param("", type="string", description="day to check, YYYY-MM-DD; empty = auto"),
        "suites": Param(
            "",
            type="string",
            description="all | streamed | reconciled | suite names; empty = auto",
        ),
        "freshness_minutes": Param(60, type="integer", minimum=1),
    },
    doc_md=DOC_MD,
)
def data_quality():
    @task
    def plan(**context) -> dict:
        """Which day and suites this run checks (see logstream.batch.quality.plan_run)."""
        from logstream.batch.quality import plan_run

        dag_run = context["dag_run"]
        events = context.get("triggering_asset_events") or {}
        extras = [event.extra or {} for batch in events.values() for event in batch]
        params = context["params"]
        return plan_run(
            str(getattr(dag_run.run_type, "value", dag_run.run_type)),
            context.get("logical_date"),
            params.get("date") or "",
            params.get("suites") or "",
            extras,
        ) | {"freshness_minutes": str(params["freshness_minutes"])}

    @task(on_failure_callback=_quality_failure_alert)
    def validate(plan: dict, **context) -> dict:
        """spark-submit jobs/quality_check.py; a failed suite fails this task without retries."""
        from datetime import date

        from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from logstream.batch.quality import load_result
        from logstream.config import Settings
        from logstream.runtime.spark import spark_conf

        settings = Settings.load()
        conf = spark_conf(settings)
        conf.pop("spark.master")  # the spark_default connection names the master
        jars = conf.pop("spark.jars") or None
        run_id = context["run_id"]
        hook = SparkSubmitHook(
            conn_id="spark_default",
            conf=conf,
            jars=jars,
            name=f"logstream-quality-{plan['date']}",
            application_args=[
                *("--date", plan["date"], "--suites", plan["suites"], "--run-id", run_id),
                *("--param", f"freshness_minutes={plan['freshness_minutes']}"),
            ],
        )
        try:
            hook.submit(application=str(JOB))
        except AirflowException:
            verdict = load_result(settings, date.fromisoformat(plan["date"]))
            if verdict is not None and verdict.run_id == run_id and not verdict.success:
                raise AirflowFailException(verdict.summary()) from None
            raise  # the job did not get to a verdict: worth a retry
        verdict = load_result(settings, date.fromisoformat(plan["date"]))
        if verdict is None or verdict.run_id != run_id:
            raise AirflowException(
                f"the quality job passed but its result for this run is not in "
                f"{settings.reports_dir}/quality/: reports_dir must be a folder the Spark driver "
                "and this worker share (client deploy mode does that)"
            )
        return {
            "date": plan["date"],
            "suites": [suite.suite for suite in verdict.suites],
            "data_docs": verdict.data_docs_index,
        }

    @task(outlets=[QUALITY_PASSED])
    def publish(verdict: dict, **context) -> dict:
        """Runs only when every suite passed: the event downstream publishing waits for."""
        context["outlet_events"][QUALITY_PASSED].extra = verdict
        return verdict

    publish(validate(plan()))


data_quality()
