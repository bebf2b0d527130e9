"""Data quality gates (SPEC §7.4): plan the day and suites, submit jobs/quality_check.py, publish
the quality-passed asset when every suite passed. The suites live in logstream.batch.quality."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from logstream.alerts import task_failure_alert
from logstream.assets import QUALITY_PASSED, RECONCILED
from logstream.orchestration import no_retry_on, submit_job, task_settings

DOC_MD = """
### data_quality

Great Expectations gates over every sink table for one day, on Spark. **A failed suite fails
`validate`, pages on-call (`quality_failure`), and `publish` does not run**, so the
`logstream_quality_passed` asset gets no event and nothing downstream publishes.

* **When:** after each reconciliation (`logstream_reconciled`: every suite of the reconciled day)
  and hourly at :15 UTC (the streamed tables of the current day).
* **Reads:** every sink table and `reconciled/<metric>` under `data_root`, partition of the day.
* **Writes:** `<reports_dir>/quality/<date>.json` (the verdict), `<reports_dir>/data_docs/`, and
  on success an event on `logstream_quality_passed`.
* **Run:** Trigger DAG w/ config `date`, `suites`, `freshness_minutes`, or
  `spark-submit jobs/quality_check.py --date 2026-01-14 [--set key=value ...]`.

The checks, schedule, alert and parameters in full: `docs/dags/data_quality.md`.
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
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
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

        dag_run, params = context["dag_run"], context["params"]
        events = context.get("triggering_asset_events") or {}
        extras = [event.extra or {} for batch in events.values() for event in batch]
        return plan_run(
            str(getattr(dag_run.run_type, "value", dag_run.run_type)),
            context.get("logical_date"),
            params.get("date") or "",
            params.get("suites") or "",
            extras,
        ) | {"freshness_minutes": str(params["freshness_minutes"])}

    @task(on_failure_callback=_quality_failure_alert)
    def validate(plan: dict, run_id=None) -> dict:
        """Submit jobs/quality_check.py and judge its verdict: a failed suite fails this task
        without retries; a job that never reached a verdict is worth a retry."""
        from datetime import date

        from logstream.batch.quality import QualityFailedError, judge_run

        settings, day = task_settings(), date.fromisoformat(plan["date"])
        arguments = [
            *("--date", plan["date"], "--suites", plan["suites"], "--run-id", run_id),
            *("--param", f"freshness_minutes={plan['freshness_minutes']}"),
        ]
        try:
            submit_job(settings, "quality_check.py", arguments, name=f"logstream-quality-{day}")
            job_error = None
        except Exception as error:  # noqa: BLE001 - judged with the verdict the job left
            job_error = error
        with no_retry_on(QualityFailedError):
            return judge_run(settings, day, run_id, job_error)

    @task(outlets=[QUALITY_PASSED])
    def publish(verdict: dict, **context) -> dict:
        """Runs only when every suite passed: the event downstream publishing waits for."""
        context["outlet_events"][QUALITY_PASSED].extra = verdict
        return verdict

    publish(validate(plan()))


data_quality()
