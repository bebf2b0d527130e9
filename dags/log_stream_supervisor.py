"""Supervisor of the streaming job (SPEC §7.1). Wiring only; logic lives in logstream.supervisor."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NoReturn

from airflow.sdk import Param, dag, task

from logstream.alerts import task_failure_alert

DOC_MD = """
### log_stream_supervisor

Keeps **exactly one** instance of the streaming job (`jobs/stream_logs.py`) running, restarts it
from its checkpoints when it dies or stalls, and pages on-call when restarts loop.

**Pattern: a watchdog, every minute** (`max_active_runs=1`, no catchup), not a long-running
submit task. The job runs detached from Airflow (its own process session, started with
`spark-submit`), and each run is a short check-and-act:

* no Airflow worker slot is held for days by one task, and a worker restart or deploy does not
  kill the stream;
* restart history and backoff live in `<state_dir>/supervisor/` (not in task retries, which reset
  with every run), so "N failures in M minutes" is counted across runs;
* every minute leaves a run in the grid with the job's state in XCom (`check`), what was done
  (`act`) and the task log; a failed run is visible and alerts.

**Tasks**

1. `preflight`: Java, the Maven-fetched jars and the Kafka broker are in place.
2. `check`: the job's health: `running` / `starting` / `stalled` (a query's status file has not
   moved for `supervisor_stall_seconds` while Kafka holds records the checkpoint has not
   committed) / `failed` (driver process gone, or a query terminated with an exception) /
   `stopped` (never started) / `held` (stopped by an operator). When a (re)start is due, it also
   checks every checkpoint under `checkpoint_root` (metadata, offset and commit logs, the Kafka
   topics they were written for): a corrupt or incompatible one fails the run with a message that
   names the file and the fix, and a critical alert. It is never reset or moved automatically.
3. `act`: under a lock, starts the job if it never ran; restarts a dead or stalled one after a
   backoff of `supervisor_backoff_seconds x 2^(restarts in the window - 1)` (the run just logs
   "backing off" and the next run restarts); after `supervisor_max_restarts` restarts within
   `supervisor_restart_window_minutes` it pages on-call (critical alert with the last error
   excerpt of the driver log) and fails without restarting.
4. `confirm`: after a start, waits up to `confirm_timeout_seconds` for every ingestion query to
   report progress; fails with the driver log excerpt if the job dies.

**Reads:** `LOGSTREAM_*` settings, the `spark_default` connection (its host is the Spark master;
defaults to `spark_master`), status files in `status_dir`, checkpoints in `checkpoint_root`, Kafka
end offsets. **Writes:** `<state_dir>/supervisor/` (`stream.pid`, `stream.log` = the driver log,
`restarts.json`, `hold.json`), alerts through `alert_sink`; the job writes the tables.

**Operate**

* *Run / start:* unpause the DAG: the next run starts the job. Trigger with
  `{"action": "start"}` to start after a hold or a restart-loop page (it clears the restart
  history: the operator's acknowledgement). `pipelines` picks what a fresh start runs
  (`logs`, `user_events` or both); restarts keep what was running.
* *Pause:* pausing the DAG stops **supervision**, not the job: it keeps running unsupervised.
* *Stop the job:* trigger with `{"action": "stop"}` (SIGTERM, SIGKILL after 30 s). The job is then
  **held**: scheduled runs leave it stopped until a run with `action=start`. From a shell the same
  functions are `logstream.supervisor.stop_job(settings)` / `start_job(settings)`.
* *CLI:* `airflow dags test log_stream_supervisor` runs one step; `logstream status` shows the
  queries' progress.

**Masters.** The job is `spark-submit`ted in client deploy mode to whatever master is configured:
`local[*]`, `spark://host:7077`, `yarn` or `k8s://https://...`; the driver is a local process the
watchdog supervises by pid. For cluster deploy mode the local process is only the submission
client: put `status_dir` on storage the driver and Airflow share and treat the status files as the
liveness signal (their `updated_at` and `exception`), and stop the application with the cluster's
own tool (`yarn application -kill`, `spark-submit --kill`). Run this DAG on the host that owns
`<state_dir>` (one Airflow pool/queue for it when workers are many).
"""


def _settings():
    """Settings from the environment, with the Spark master of the ``spark_default`` connection
    when one is defined (the same source the Spark provider's operators use)."""
    from logstream.config import Settings

    settings = Settings.load()
    try:
        from airflow.sdk import Connection

        connection = Connection.get("spark_default")
    except Exception:  # noqa: BLE001 - no connection: the LOGSTREAM_SPARK_MASTER setting stands
        return settings
    if connection.host:
        master = connection.host + (f":{connection.port}" if connection.port else "")
        settings = settings.replace(spark_master=master)
    return settings


def _fail_fast(exc: Exception) -> NoReturn:
    """Errors that another try cannot fix fail the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from logstream.supervisor import CheckpointError, JobFailedError, RestartLoopError

    if isinstance(exc, CheckpointError | JobFailedError | RestartLoopError):
        raise AirflowFailException(str(exc)) from exc
    raise exc


@dag(
    dag_id="log_stream_supervisor",
    schedule=timedelta(minutes=1),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=15),
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
    },
    doc_md=DOC_MD,
)
def log_stream_supervisor():
    @task
    def preflight() -> dict:
        """Check Java, jars and Kafka; the returned report shows in XCom."""
        from logstream.runtime.preflight import run_preflight

        return run_preflight(_settings()).as_dict()

    @task(execution_timeout=timedelta(minutes=3))
    def check(params: dict) -> dict:
        """The job's health; checkpoints are checked when a (re)start is due."""
        from logstream import supervisor

        settings = _settings()
        health = supervisor.inspect(settings)
        report = health.as_dict()
        if health.needs_start and params["action"] != "stop":
            try:
                report["checkpoints"] = [c.query for c in supervisor.check_checkpoints(settings)]
            except supervisor.CheckpointError as exc:
                _fail_fast(exc)
        return report

    @task(execution_timeout=timedelta(minutes=5))
    def act(params: dict, health: dict) -> dict:
        """Start, restart, back off, page or stop, under the supervisor lock."""
        from logstream import supervisor
        from logstream.errors import LogstreamError

        try:
            outcome = supervisor.supervise(
                _settings(), action=params["action"], pipelines=params["pipelines"].split(",")
            )
        except LogstreamError as exc:
            _fail_fast(exc)
        return outcome.as_dict()

    @task(execution_timeout=timedelta(minutes=30))
    def confirm(params: dict, outcome: dict) -> dict:
        """After a start: wait for the ingestion queries' first progress."""
        from logstream import supervisor
        from logstream.errors import LogstreamError

        if outcome["action"] not in {"started", "restarted"}:
            return {"confirmed": False, "reason": f"nothing started ({outcome['action']})"}
        try:
            health = supervisor.wait_for_progress(
                _settings(), outcome["started_at"], params["confirm_timeout_seconds"]
            )
        except LogstreamError as exc:
            _fail_fast(exc)
        return {"confirmed": True, "pid": health.pid, "queries": health.queries}

    health = check()
    preflight() >> health
    confirm(outcome=act(health=health))


log_stream_supervisor()
