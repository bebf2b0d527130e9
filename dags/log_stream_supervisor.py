"""Supervisor of the streaming job (SPEC §7.1): every minute check the job, run preflight only
before a (re)start, act and confirm, then watch it for up to an hour, restarting a dead driver
within seconds. The logic lives in logstream.supervisor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, TriggerRule, dag, task

from logstream.alerts import task_failure_alert
from logstream.orchestration import no_retry_on, task_settings

DOC_MD = """
### log_stream_supervisor

Keeps **exactly one** streaming job (`jobs/stream_logs.py`) running, detached from Airflow:
`check` reads its health (and, before a start, its checkpoints), `preflight` checks Java, jars
and Kafka **only when a (re)start is due**, `act` starts, restarts (with backoff), pages on a
restart loop or stops, `confirm` waits for the first progress after a start, and `watch` then
polls the driver every second for `watch_seconds` (default an hour) and restarts it within
seconds of its death. The schedule (every minute, one run at a time) starts the next watch when
one ends or its worker dies.

* **Reads:** `LOGSTREAM_*` settings, the `spark_default` connection (the Spark master), status
  files in `status_dir`, checkpoints in `checkpoint_root`, Kafka end offsets.
* **Writes:** `<state_dir>/supervisor/` (`stream.pid`, `stream.log` = the driver log,
  `restarts.json`, `hold.json`), alerts through `alert_sink`; the job writes the tables.
* **Operate:** unpause to start; trigger with `{"action": "stop"}` to stop and hold the job,
  `{"action": "start"}` to start it again (and clear the restart history after a page); a
  triggered run waits at most a few seconds for the watch to hand over. Pausing stops
  supervision, not the job.

Tasks, restart policy, masters and deploy modes in full: `docs/dags/log_stream_supervisor.md`.
"""


#: The longest watch a run may keep (its task's and the run's timeouts are set from it).
WATCH_MAX_SECONDS = 7200


def _permanent() -> tuple[type[Exception], ...]:
    """Checkpoint, job and restart-loop errors: another try cannot fix them."""
    from logstream.supervisor import CheckpointError, JobFailedError, RestartLoopError

    return CheckpointError, JobFailedError, RestartLoopError


@dag(
    dag_id="log_stream_supervisor",
    schedule=timedelta(minutes=1),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(seconds=WATCH_MAX_SECONDS) + timedelta(minutes=30),
    tags=["logstream", "streaming", "supervisor"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "on_failure_callback": task_failure_alert,
    },
    params={
        "action": Param(
            "supervise",
            enum=["supervise", "start", "stop"],
            description="supervise (scheduled runs), start (clears a hold and the restart "
            "history), stop (stops the job and holds it stopped)",
        ),
        "pipelines": Param(
            "logs,user_events",
            enum=["logs,user_events", "logs", "user_events"],
            description="what a fresh start runs; restarts keep what was running",
        ),
        "confirm_timeout_seconds": Param(
            180, type="integer", minimum=10, description="wait for progress after a start"
        ),
        "watch_seconds": Param(
            3600,
            type="integer",
            minimum=0,
            maximum=WATCH_MAX_SECONDS,
            description="then watch the job this long (0: no watch); a dead driver is restarted "
            "within seconds",
        ),
    },
    doc_md=DOC_MD,
)
def log_stream_supervisor():
    @task(execution_timeout=timedelta(minutes=3))
    def check(params: dict) -> dict:
        """The job's health, whether a (re)start is due and, if so, its checkpoints."""
        from logstream import supervisor

        with no_retry_on(supervisor.CheckpointError):
            return supervisor.check_run(task_settings(), params["action"])

    @task
    def preflight(health: dict) -> dict:
        """Before a (re)start only: Java, jars and Kafka are in place (the report is in XCom)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from logstream.runtime.preflight import run_preflight

        if not health["start_due"]:
            raise AirflowSkipException(f"no start due: the job is {health['state']}")
        return run_preflight(task_settings()).as_dict()

    @task(execution_timeout=timedelta(minutes=5), trigger_rule=TriggerRule.NONE_FAILED)
    def act(params: dict, health: dict) -> dict:
        """Start, restart, back off, page or stop, under the supervisor lock."""
        from logstream import supervisor

        with no_retry_on(*_permanent()):
            outcome = supervisor.supervise(
                task_settings(), action=params["action"], pipelines=params["pipelines"].split(",")
            )
        return outcome.as_dict()

    @task(execution_timeout=timedelta(minutes=30))
    def confirm(params: dict, outcome: dict) -> dict:
        """After a start: wait for the ingestion queries' first progress."""
        from logstream import supervisor

        with no_retry_on(*_permanent()):
            return supervisor.confirm_start(
                task_settings(), outcome, params["confirm_timeout_seconds"]
            )

    @task(execution_timeout=timedelta(seconds=WATCH_MAX_SECONDS + 600))
    def watch(params: dict, confirmed: dict) -> dict:
        """Poll the driver every second; restart it at once when it dies (same lock, policy and
        paging as `act`). Ends after `watch_seconds`, when the job is held, or when another run
        of this DAG is queued (an operator's trigger)."""
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowSkipException

        from logstream import supervisor
        from logstream.runtime.preflight import run_preflight

        if params["action"] == "stop":
            raise AirflowSkipException("the job was stopped: nothing to watch")
        if not params["watch_seconds"]:
            raise AirflowSkipException("watch_seconds is 0")
        settings = task_settings()
        ti = get_current_context()["ti"]

        def run_queued() -> str | None:
            queued = ti.get_dr_count(dag_id=ti.dag_id, states=["queued"])
            return f"{queued} run(s) of {ti.dag_id} queued: handing over" if queued else None

        with no_retry_on(*_permanent()):
            report = supervisor.watch_job(
                settings,
                params["watch_seconds"],
                should_end=run_queued,
                before_start=lambda: run_preflight(settings),
            )
        return report.as_dict()

    health = check()
    outcome = act(health=health)
    preflight(health) >> outcome
    watch(confirmed=confirm(outcome=outcome))


log_stream_supervisor()
