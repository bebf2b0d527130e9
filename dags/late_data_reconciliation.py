"""Nightly late-data reconciliation (SPEC §6, §7.2): plan the days, submit jobs/reconcile_day.py
per day, publish the reconciled asset. Day arithmetic and report: logstream.batch.reconcile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task

from logstream.alerts import task_failure_alert
from logstream.assets import RECONCILED
from logstream.orchestration import submit_job, task_settings

DOC_MD = """
### late_data_reconciliation

Recomputes every metric window of the previous UTC day from bronze with the stream's own
transforms (late events included), publishes it atomically and reports what changed; then
`data_quality` runs on the `logstream_reconciled` asset.

* **Reads:** bronze `events`/`user_events` of the day (and the next day's first hour), and the
  streamed metric tables' `window_date=<day>` partition.
* **Writes:** `reconciled/<family>/window_date=<day>`, `reconciliation_report/report_date=<day>`
  and `<reports_dir>/reconciliation/<day>.json`; each day's summary in XCom.
* **Schedule:** 02:30 UTC for the day before, one run at a time, no catchup: the first
  unpause runs the latest night only (missed nights: trigger a range, below).
* **A day without bronze data** is a no-op with no spark-submit ("no bronze data for <day>:
  nothing to reconcile"); `publish` leaves it out of the asset event, and skips when no day
  was reconciled (then `data_quality` is not triggered).
* **Run a range:** Trigger DAG w/ `start_date`/`end_date` (UTC, inclusive, at most 92 days), or
  `spark-submit jobs/reconcile_day.py --date 2026-11-25 [--set key=value ...]`.

Schedule, catch-up and parameters in full: `docs/dags/late_data_reconciliation.md`.
"""


@dag(
    dag_id="late_data_reconciliation",
    schedule=CronTriggerTimetable("30 2 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
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
        """Submit jobs/reconcile_day.py for one day; returns the report's summary. A day without
        bronze data (listed on a local data_root) returns at once, with no spark-submit."""
        from logstream.batch.reconcile import (
            has_bronze,
            job_arguments,
            parse_day,
            run_summary,
            skipped_summary,
        )

        settings, when = task_settings(), parse_day(day)
        if has_bronze(settings, when) is False:
            return skipped_summary(when)
        submit_job(
            settings, "reconcile_day.py", job_arguments(when), name=f"logstream-reconcile-{day}"
        )
        return run_summary(settings, when)

    @task(outlets=[RECONCILED])
    def publish(summaries: list[dict]) -> dict:
        """Announce the reconciled days on the asset (data_quality runs next); skipped, with no
        asset event, when no day had bronze data."""
        from airflow.sdk.exceptions import AirflowSkipException

        every = list(summaries)
        done = [item for item in every if item.get("reconciled", True)]
        days = [item["day"] for item in done]
        if not days:
            raise AirflowSkipException(
                "no day had bronze data: nothing reconciled, so no asset event and no data_quality"
            )
        context = get_current_context()
        origin = context["params"].get("origin")
        context["outlet_events"][RECONCILED].extra = {
            "days": days,
            **({"origin": origin} if origin else {}),
        }
        return {
            "days": days,
            "without_bronze": [item["day"] for item in every if item not in done],
            "windows_corrected": sum(item.get("windows_corrected", 0) for item in done),
        }

    publish(reconcile.expand(day=plan_days()))


late_data_reconciliation()
