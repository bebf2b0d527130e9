"""How a DAG task runs one of ``jobs/``: spark-submit through Airflow's ``spark_default``
connection (which names the master), with the settings' Spark configuration, and killed with the
task so that a timed-out or killed task never leaves spark-submit running."""

from __future__ import annotations

from collections.abc import Sequence

from logstream.config import PROJECT_ROOT, Settings
from logstream.runtime.spark import spark_conf


def submit_job(settings: Settings, job: str, arguments: Sequence[str], name: str) -> None:
    """spark-submit ``jobs/<job>`` with ``arguments``; raises what the hook raises on failure."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    conf = spark_conf(settings)
    conf.pop("spark.master")  # the spark_default connection names the master
    jars = conf.pop("spark.jars")
    driver_memory = conf.pop("spark.driver.memory")
    hook = SparkSubmitHook(
        conn_id="spark_default",
        conf=conf,
        jars=jars or None,
        driver_memory=driver_memory,
        name=name,
        application_args=list(arguments),
    )
    try:
        hook.submit(application=str(PROJECT_ROOT / "jobs" / job))
    except BaseException:
        hook.on_kill()
        raise
