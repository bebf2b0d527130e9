"""The Airflow ``on_failure_callback``: a failed task instance becomes one pipeline-failure alert.

Every DAG sets :func:`task_failure_alert` in its ``default_args``. The alert goes through
:func:`~logstream.alerts.routing.notify`, so a task that fails the same run twice pages once.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from logstream.alerts.messages import one_line
from logstream.alerts.model import Alert
from logstream.alerts.routing import notify

log = logging.getLogger(__name__)

_ERROR_EXCERPT_MAX = 2_000  # error text carried by a pipeline-failure alert


def _error_excerpt(error: BaseException | str | None) -> str:
    """The error's type and message, bounded (the head and the tail of long messages)."""
    if error is None:
        return ""
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    if len(text) <= _ERROR_EXCERPT_MAX:
        return text
    half = _ERROR_EXCERPT_MAX // 2
    return f"{text[:half]}\n… [{len(text) - 2 * half} characters cut] …\n{text[-half:]}"


def _airflow_run_url(dag_id: str, run_id: str) -> str:
    """The DAG run's page in the Airflow UI (``[api] base_url``), from inside Airflow only."""
    if "airflow" not in sys.modules:
        return ""
    try:
        from airflow.sdk.configuration import conf

        base = conf.get("api", "base_url", fallback="http://localhost:8080/")
    except Exception:  # noqa: BLE001 - no Airflow config: no run link
        return ""
    return f"{base.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id, safe='')}"


def task_failure_alert(context: Mapping[str, Any]) -> None:
    """Airflow ``on_failure_callback``: one pipeline-failure alert per failed task instance.

    Links point at the task log and the DAG run in the Airflow UI; the error excerpt is bounded.
    Never raises (a failing callback would only hide the task's own failure).
    """
    try:
        ti = context.get("task_instance") or context.get("ti")
        dag_id = str(getattr(ti, "dag_id", None) or "?")
        task_id = str(getattr(ti, "task_id", None) or "?")
        run_id = str(context.get("run_id") or getattr(ti, "run_id", None) or "?")
        map_index = getattr(ti, "map_index", None)
        mapped = f"[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else ""
        error = context.get("exception")
        excerpt = _error_excerpt(error)
        try:
            log_url = str(getattr(ti, "log_url", "") or "")
        except Exception:  # noqa: BLE001 - log_url needs Airflow config; skip the link
            log_url = ""
        details = {"dag_id": dag_id, "task_id": f"{task_id}{mapped}", "run_id": run_id}
        try_number = getattr(ti, "try_number", None)
        if try_number is not None:
            details["try_number"] = try_number
        if excerpt:
            details["error"] = excerpt
        links = {"log": log_url, "run": _airflow_run_url(dag_id, run_id) if ti else ""}
        alert = Alert(
            dedup_key=f"pipeline:{dag_id}:{task_id}{mapped}:{run_id}",
            kind="pipeline_failure",
            severity="critical",
            summary=(
                f"{dag_id}.{task_id}{mapped} failed: "
                f"{one_line(excerpt, 300) if excerpt else 'see the task log'}"
            ),
            details=details,
            links={name: url for name, url in links.items() if url},
        )
    except Exception as exc:  # noqa: BLE001 - never fail the callback
        log.error(f"could not build the task failure alert: {exc}", extra={"error": str(exc)})
        return
    notify(alert)
