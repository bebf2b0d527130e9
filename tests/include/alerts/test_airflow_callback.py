"""The Airflow failure callback, called with the context attributes Airflow passes, delivering to
a real webhook receiver."""

from __future__ import annotations

from logstream.alerts.airflow_callback import task_failure_alert


class FailedTaskInstance:
    """The attributes Airflow's RuntimeTaskInstance exposes to an on_failure_callback."""

    dag_id = "nightly"
    task_id = "reconcile"
    run_id = "scheduled__2026-01-01T00:00:00+00:00"
    map_index = -1
    try_number = 3
    log_url = "http://airflow.local/dags/nightly/runs/scheduled__2026/tasks/reconcile?try_number=3"


def test_task_failure_alert_links_the_log_and_bounds_the_error(
    clean_env, receiver, tmp_path, monkeypatch
):
    monkeypatch.setenv("LOGSTREAM_STATE_DIR", str(tmp_path))
    clean_env.setenv("LOGSTREAM_ALERT_SINK", "webhook")
    clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/hook")
    error = RuntimeError("disk full\n" + "x" * 20_000)
    context = {"ti": FailedTaskInstance(), "run_id": FailedTaskInstance.run_id, "exception": error}

    task_failure_alert(context)
    task_failure_alert(context)  # the same failed run again: deduplicated

    [body] = receiver.json_bodies()
    assert body["dedup_key"] == "pipeline:nightly:reconcile:scheduled__2026-01-01T00:00:00+00:00"
    assert (body["kind"], body["severity"]) == ("pipeline_failure", "critical")
    assert body["links"]["log"] == FailedTaskInstance.log_url
    assert body["summary"].startswith("nightly.reconcile failed: RuntimeError: disk full x")
    assert len(body["summary"]) <= 400
    assert body["details"]["error"].startswith("RuntimeError: disk full\nxxx")
    assert len(body["details"]["error"]) <= 2_100
    assert body["details"]["try_number"] == 3


def test_task_failure_alert_survives_an_empty_context(clean_env, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LOGSTREAM_STATE_DIR", str(tmp_path))
    task_failure_alert({})
    assert any("?.? failed" in r.getMessage() for r in caplog.records)
