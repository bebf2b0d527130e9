"""Supervisor of the streaming job (SPEC §7.1). Wiring only; logic lives in include/logstream."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

DOC_MD = """
### log_stream_supervisor

Keeps the logstream streaming job healthy. **Current stage:** preflight only: it checks that
Java, the Maven-fetched jars (Kafka broker, Spark's Kafka connector) and the Kafka broker are in
place, and fails with a message that says what to fix. Starting, watching and restarting the
streaming job from its checkpoint are added with the streaming job.

* **Reads:** local settings (`LOGSTREAM_*` environment), the jar cache, the Kafka broker.
* **Writes:** nothing yet.
* **Run:** unpause it, or trigger it from the UI; `airflow dags test log_stream_supervisor`.
"""


@dag(
    dag_id="log_stream_supervisor",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["logstream", "streaming", "supervisor"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    doc_md=DOC_MD,
)
def log_stream_supervisor():
    @task
    def preflight() -> dict:
        """Check Java, jars and Kafka; the returned report shows in XCom."""
        from logstream.config import Settings
        from logstream.preflight import run_preflight

        return run_preflight(Settings.load()).as_dict()

    preflight()


log_stream_supervisor()
