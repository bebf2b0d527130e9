"""The boundary between a DAG task and the job it runs: the settings the task works with, and the
one spark-submit path that hands every job in ``jobs/`` exactly those settings.

A job's driver does not necessarily run where the task runs (a cluster, another host), so the
task's environment is never assumed to reach it: every setting travels on the job's command line
(`logstream.config.settings_arguments`, read back by `settings_from_arguments`). The task then
judges the job's output with the same settings, so both look at the same ``data_root`` and
``reports_dir``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from logstream.config import PROJECT_ROOT, Settings, settings_arguments

#: The folder of the spark-submit entrypoints.
JOBS_DIR = PROJECT_ROOT / "jobs"
#: The Airflow connection whose host names the Spark master jobs are submitted to.
SPARK_CONNECTION = "spark_default"


def task_settings() -> Settings:
    """The settings a DAG task runs with: ``LOGSTREAM_*`` and the YAML file, with the Spark master
    of the ``spark_default`` connection when one is defined (where the jobs are submitted)."""
    settings = Settings.load()
    try:
        from airflow.sdk import Connection

        connection = Connection.get(SPARK_CONNECTION)
    except Exception:  # noqa: BLE001 - no connection: the LOGSTREAM_SPARK_MASTER setting stands
        return settings
    if connection.host:
        master = connection.host + (f":{connection.port}" if connection.port else "")
        settings = settings.replace(spark_master=master)
    return settings


@dataclass(frozen=True)
class Submission:
    """What `submit_job` hands spark-submit; the master comes from the connection."""

    application: str
    application_args: list[str]
    conf: dict[str, str]
    jars: str | None
    driver_memory: str
    name: str


def plan_submission(
    settings: Settings, job: str, arguments: Sequence[str], name: str
) -> Submission:
    """spark-submit of ``jobs/<job>`` with the job's own ``arguments`` followed by every setting
    (``--set``), and the Spark configuration `logstream.runtime.spark` builds sessions with."""
    from logstream.runtime.spark import spark_conf

    conf = spark_conf(settings)
    conf.pop("spark.master")  # the spark_default connection names the master
    jars = conf.pop("spark.jars") or None
    driver_memory = conf.pop("spark.driver.memory")
    return Submission(
        application=str(JOBS_DIR / job),
        application_args=[*arguments, *settings_arguments(settings)],
        conf=conf,
        jars=jars,
        driver_memory=driver_memory,
        name=name,
    )


def submit_job(settings: Settings, job: str, arguments: Sequence[str], name: str) -> None:
    """Run ``jobs/<job>`` through the ``spark_default`` connection and wait for it; raises what
    the hook raises when the job fails. A killed or timed-out task takes spark-submit with it."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    submission = plan_submission(settings, job, arguments, name)
    hook = SparkSubmitHook(
        conn_id=SPARK_CONNECTION,
        conf=submission.conf,
        jars=submission.jars,
        driver_memory=submission.driver_memory,
        name=submission.name,
        application_args=submission.application_args,
    )
    try:
        hook.submit(application=submission.application)
    except BaseException:
        hook.on_kill()
        raise


@contextmanager
def no_retry_on(*permanent: type[Exception]) -> Iterator[None]:
    """Errors of the ``permanent`` kinds (another try cannot fix them) fail the task at once
    instead of spending its retries; any other error propagates as it is."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except permanent as exc:
        raise AirflowFailException(str(exc)) from exc
