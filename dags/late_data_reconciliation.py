"""Nightly late-data reconciliation (SPEC §6, §7.2). Wiring only: the day arithmetic and the
report live in logstream.batch.reconcile, the Spark work in jobs/reconcile_day.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task

from logstream.alerts import task_failure_alert
from logstream.assets import RECONCILED

DOC_MD = """
### late_data_reconciliation

The streamed metric tables are provisional: a window is emitted once, when the watermark passes
it, and events that arrive later are only in bronze. Every night this DAG recomputes every metric
window of the previous UTC day from bronze with the stream's own transforms, publishes the result
atomically and reports what changed. Then `data_quality` runs (it is scheduled on the
`logstream_reconciled` asset this DAG updates).

* **Reads:** bronze `events` and `user_events` (partitions of the day, plus the first hour of
  the next day for sliding windows that end after midnight), and the streamed metric tables'
  partition `window_date=<day>` (to compare).
* **Writes:** `reconciled/<family>/window_date=<day>` for every metric family (one file per
  family-day, swapped in atomically: readers see the old day or the new one, never half of one;
  a re-run gives identical files), `reconciliation_report/report_date=<day>` (one row per corrected
  window) and `<reports_dir>/reconciliation/<day>.json` (windows corrected per family, windows
  only in the stream, late events per service, maximum lateness). Each day's task returns the
  report's summary in XCom.
* **Schedule:** 02:30 UTC, for the UTC day before. `catchup` is on, so nights missed while the
  scheduler was down are reconciled when it comes back, oldest first, one run at a time. The
  start date is fixed at 2026-11-20, the first day this pipeline ran: a new install back-fills the
  nights since then. An install that starts much later should first run the range it needs from
  the UI (below) and mark older runs as done, or clear them: every reconciliation is idempotent.
* **Run a date range from the UI:** *Trigger DAG* -> fill `start_date` and `end_date`
  (YYYY-MM-DD, UTC, inclusive; one of them alone reconciles that day; both empty = yesterday).
  Each day becomes one mapped `reconcile` task (one `spark-submit` against `spark_default`, run
  one after the other); at most 92 days per run, none after today. `origin` (set to `backfill`
  by `log_backfill`) goes into the asset event: `data_quality` then checks only the reconciled
  tables of those days, which the stream never wrote.
* **CLI:** `airflow dags trigger late_data_reconciliation -c '{"start_date": "2026-11-20",
  "end_date": "2026-11-24"}'`, or without Airflow:
  `spark-submit jobs/reconcile_day.py --date 2026-11-25 [--set key=value ...]`.
"""


@dag(
    dag_id="late_data_reconciliation",
    schedule=CronTriggerTimetable("30 2 * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 20, tzinfo=UTC),
    catchup=True,
    max_active_runs=1,
    tags=["logstream", "late-data", "reconciliation", "spark"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "on_failure_callback": task_failure_alert,
    },
    params={
        "start_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="First day (UTC)",
            description="First UTC day to reconcile (inclusive). Empty: the day before the run.",
        ),
        "end_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Last day (UTC)",
            description="Last UTC day to reconcile (inclusive). Empty: the same as the first.",
        ),
        "origin": Param(
            None,
            type=["null", "string"],
            title="Origin",
            description="Who asked, e.g. backfill (set by log_backfill): data_quality then checks "
            "only the reconciled tables of those days, which the stream never saw.",
        ),
    },
    doc_md=DOC_MD,
)
def late_data_reconciliation():
    @task
    def plan_days() -> list[str]:
        """The days of this run: the params' range, or the UTC day before the run."""
        from logstream.batch.reconcile import days_to_reconcile, previous_utc_day

        context = get_current_context()
        moment = context.get("logical_date") or context["dag_run"].run_after
        days = days_to_reconcile(
            context["params"].get("start_date"),
            context["params"].get("end_date"),
            default_day=previous_utc_day(moment),
            today=datetime.now(UTC).date(),
        )
        return [day.isoformat() for day in days]

    @task(max_active_tis_per_dagrun=1)
    def reconcile(day: str) -> dict:
        """spark-submit jobs/reconcile_day.py for one day; returns the report's summary."""
        from logstream.batch.reconcile import job_arguments, parse_day, run_summary
        from logstream.config import Settings
        from logstream.runtime.submit import submit_job

        settings = Settings.load()
        arguments = job_arguments(settings, parse_day(day))
        submit_job(settings, "reconcile_day.py", arguments, name=f"logstream-reconcile-{day}")
        return run_summary(settings, parse_day(day))

    @task(outlets=[RECONCILED])
    def publish(summaries: list[dict]) -> dict:
        """Announce the reconciled days on the asset (data_quality runs next)."""
        done = list(summaries)
        days = [item["day"] for item in done]
        context = get_current_context()
        origin = context["params"].get("origin")
        context["outlet_events"][RECONCILED].extra = {
            "days": days,
            **({"origin": origin} if origin else {}),
        }
        return {
            "days": days,
            "windows_corrected": sum(item.get("windows_corrected", 0) for item in done),
        }

    publish(reconcile.expand(day=plan_days()))


late_data_reconciliation()
