"""The on-call alert of a failed quality run, and the validate task's failure callback."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import Any

from logstream.alerts import Alert, notify, task_failure_alert
from logstream.batch.quality.result import QualityResult, load_result
from logstream.config import Settings

log = logging.getLogger(__name__)


def quality_alert(result: QualityResult, links: Mapping[str, str] | None = None) -> Alert:
    """The on-call alert for a failed quality run: which suites, which expectations, Data Docs."""
    failed = result.failed_suites
    failures = result.failures
    pages = {
        f"data_docs:{suite.suite}": suite.docs_page
        for suite in result.suites
        if not suite.success and suite.docs_page
    }
    return Alert(
        dedup_key=f"quality:{result.day}:{','.join(sorted(failed))}",
        kind="quality_failure",
        severity="critical",
        summary=(
            f"data quality failed for {result.day}: {len(failures)} expectation(s) in "
            f"{', '.join(failed)}"
        ),
        details={
            "date": result.day,
            "failed_suites": failed,
            "failed_expectations": [failure.line() for failure in failures[:20]],
            "suites_passed": sum(suite.success for suite in result.suites),
            "suites_total": len(result.suites),
            "parameters": result.parameters,
        },
        links={"data_docs": result.data_docs_index, **pages, **dict(links or {})},
    )


def quality_failure_alert(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of the validate task: the quality alert when this run's verdict
    failed, else (the job could not run) the generic pipeline-failure alert. Never raises."""
    try:
        ti = context.get("task_instance") or context.get("ti")
        run_id = str(context.get("run_id") or getattr(ti, "run_id", ""))
        plan = ti.xcom_pull(task_ids="plan") if ti is not None else None
        settings = Settings.load()
        result = load_result(settings, date.fromisoformat(plan["date"])) if plan else None
        if result is not None and result.run_id == run_id and not result.success:
            log_url = str(getattr(ti, "log_url", "") or "")
            notify(quality_alert(result, {"log": log_url} if log_url else None), None, settings)
            return
    except Exception as exc:  # noqa: BLE001 - fall back to the generic alert below
        log.error("could not build the quality alert", extra={"error": str(exc)})
    task_failure_alert(context)
