"""What the ``log_stream_supervisor`` DAG's tasks and the ``logstream stream`` CLI call: one
watchdog step (:func:`supervise`), an operator's :func:`start_job` / :func:`stop_job`, the
checkpoint gate with its alert (:func:`check_checkpoints`) and :func:`wait_for_progress` after a
start.

Every step runs under the supervisor lock, so two steps never decide at once: it inspects the
job, adopts an unrecorded instance and stops extra ones (exactly one instance per checkpoint),
asks the restart policy what to do, and then starts, restarts (checkpoint checked first), waits
out the backoff or pages on a restart loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from logstream.alerts import notify
from logstream.config import Settings
from logstream.errors import LogstreamError, ServiceError
from logstream.supervisor import notices
from logstream.supervisor.checkpoints import (
    CheckpointError,
    CheckpointReport,
    validate_checkpoints,
)
from logstream.supervisor.deploy import driver_for
from logstream.supervisor.drivers import DriverRef
from logstream.supervisor.health import Health, inspect
from logstream.supervisor.policy import decide
from logstream.supervisor.processes import PIPELINES, STOP_GRACE_SECONDS
from logstream.supervisor.state import (
    clear_hold,
    clear_record,
    read_history,
    read_record,
    supervisor_lock,
    write_history,
    write_hold,
)

log = logging.getLogger(__name__)


class RestartLoopError(LogstreamError):
    """The job failed again after ``supervisor_max_restarts`` restarts within the window."""


class JobFailedError(LogstreamError):
    """The job exited or a query failed right after a start."""


@dataclass(frozen=True)
class Outcome:
    """What one :func:`supervise` step did (returned to Airflow as XCom)."""

    action: str  # none | started | restarted | waiting | stopped
    reason: str
    state: str
    pid: int | None = None
    started_at: float | None = None
    pipelines: list[str] = field(default_factory=list)
    restarts_in_window: int = 0
    backoff_remaining_s: float = 0.0
    driver_id: str = ""  # the cluster's id of the driver (spark_deploy_mode=cluster)

    @property
    def launched(self) -> bool:
        return self.action in {"started", "restarted"}

    def as_dict(self) -> dict:
        return asdict(self)


def check_checkpoints(settings: Settings) -> list[CheckpointReport]:
    """:func:`validate_checkpoints`, plus a critical alert when a checkpoint is refused."""
    try:
        return validate_checkpoints(settings)
    except CheckpointError as exc:
        notify(notices.checkpoint_refused(exc), settings.alert_sink, settings)
        raise


def _adopt(settings: Settings, health: Health) -> None:
    """Record a job instance that runs without a (valid) record instead of starting another."""
    if health.recorded or health.instance is None:
        return
    ref = DriverRef(health.instance, health.started_at, health.pipelines)
    if driver_for(settings).adopt(ref, settings) is not None:
        log.warning("adopted an unrecorded job instance", extra={"instance": health.instance})


def _stop_duplicates(settings: Settings, health: Health) -> None:
    """More than one instance on one checkpoint: keep the recorded one, stop the others."""
    driver = driver_for(settings)
    for instance in health.duplicates:
        log.warning(
            "stopping a second job instance", extra={"instance": instance, "kept": health.instance}
        )
        driver.kill(instance, settings, STOP_GRACE_SECONDS)
    if health.duplicates:
        alert = notices.duplicates_stopped(health, settings.checkpoint_root)
        notify(alert, settings.alert_sink, settings)


def supervise(
    settings: Settings,
    action: str = "supervise",
    pipelines: Sequence[str] | None = None,
    now: float | None = None,
    grace_seconds: float = STOP_GRACE_SECONDS,
    before_start: Callable[[], object] | None = None,
) -> Outcome:
    """One watchdog step under the supervisor lock.

    ``supervise``: start the job if it never ran, restart it (checkpoint checked first) if it died
    or stalled, after the backoff; page and raise :class:`RestartLoopError` on a restart loop.
    ``start``: an operator's start: clears the hold and the restart history, then supervises.
    ``stop``: stop the job and hold it stopped until the next ``start``.
    ``before_start`` (e.g. the preflight) runs right before a start or restart; what it raises
    stops the step before anything is stopped or started.
    """
    if action not in {"supervise", "start", "stop"}:
        raise LogstreamError(f"unknown action {action!r}; use supervise, start or stop")
    with supervisor_lock(settings):
        if action == "stop":
            return _stop_locked(settings, grace_seconds)
        now = time.time() if now is None else now
        if action == "start":
            clear_hold(settings)
            write_history(settings, [], now)
        health = inspect(settings, now)
        _adopt(settings, health)
        _stop_duplicates(settings, health)
        history = read_history(settings)
        decision = decide(health.state, [r["at"] for r in history], now, settings)
        common = {"state": health.state, "restarts_in_window": decision.restarts_in_window}
        if decision.action == "none":
            return Outcome(
                "none",
                decision.reason,
                pid=health.pid,
                pipelines=health.pipelines,
                driver_id=health.driver_id,
                **common,
            )
        if decision.action == "wait":
            log.info("restart deferred", extra={"remaining_s": decision.backoff_remaining_s})
            return Outcome(
                "waiting",
                f"{health.reason}; {decision.reason}",
                backoff_remaining_s=decision.backoff_remaining_s,
                **common,
            )
        if decision.action == "page":
            window = settings.supervisor_restart_window_minutes
            page = notices.restart_loop(health, decision, window, now)
            notify(page, settings.alert_sink, settings)
            raise RestartLoopError(
                f"the streaming job failed again after {decision.restarts_in_window} restarts "
                f"within {window} minutes; on-call was paged "
                f"and it is not restarted. Last problem: {health.reason}. Last error:\n"
                f"{health.error_excerpt or '(none in the driver log)'}\nFix the cause (driver "
                f"log: {health.log}), then trigger log_stream_supervisor with action=start."
            )
        if before_start is not None:
            before_start()
        driver = driver_for(settings)
        if health.alive and health.instance is not None:  # stalled, or a failed query
            driver.kill(health.instance, settings, grace_seconds)
        check_checkpoints(settings)
        record = read_record(settings)
        # a restart runs what was running; a first start or an operator's start what was asked
        chosen = (
            list(record.pipelines)
            if record is not None and action == "supervise"
            else list(pipelines or PIPELINES)
        )
        if decision.action == "restart":
            history.append({"at": now, "reason": f"{health.state}: {health.reason}"[:500]})
            write_history(settings, history, now)
        launched = driver.submit(settings, chosen)
        if decision.action == "restart":
            notify(notices.restarted(health, now), settings.alert_sink, settings)
        return Outcome(
            "restarted" if decision.action == "restart" else "started",
            f"{health.state}: {health.reason}",
            health.state,
            launched.pid or None,
            launched.started_at,
            launched.pipelines,
            decision.restarts_in_window + (decision.action == "restart"),
            driver_id=launched.driver_id,
        )


def _stop_locked(settings: Settings, grace_seconds: float = STOP_GRACE_SECONDS) -> Outcome:
    """Hold the job stopped, then stop every instance of it on this checkpoint (the recorded one
    and any other) and forget the record. The caller holds the supervisor lock. The hold comes
    first so that a watch (:mod:`logstream.supervisor.watch`) polling meanwhile sees an operator's
    stop, not a dead driver to restart."""
    write_hold(settings)
    driver = driver_for(settings)
    stopped: list[int | str] = []
    record = read_record(settings)
    if record is not None:
        ref, _ = driver.check(record, settings)
        if ref is not None:
            stopped.append(ref.id)
    stopped += [r.id for r in driver.find_running(settings) if r.id not in stopped]
    for instance in stopped:
        if not driver.kill(instance, settings, grace_seconds):
            raise ServiceError(
                f"the streaming job ({instance}) did not stop; stop it by hand and run stop again"
            )
    clear_record(settings)
    what = "pid(s)" if driver.kind == "local" else f"{driver.kind} driver(s)"
    return Outcome("stopped", f"stopped {what} {stopped}" if stopped else "was not running", "held")


def start_job(settings: Settings, pipelines: Sequence[str] | None = None) -> Outcome:
    """Operator start: clear a hold and the restart history, start if not already running."""
    return supervise(settings, action="start", pipelines=pipelines)


def stop_job(settings: Settings, grace_seconds: float = STOP_GRACE_SECONDS) -> Outcome:
    """Operator stop: SIGTERM the job (SIGKILL after ``grace_seconds``) and hold it stopped, so
    the watchdog does not bring it back until :func:`start_job` or a run with action=start."""
    return supervise(settings, action="stop", grace_seconds=grace_seconds)


def wait_for_progress(
    settings: Settings, started_at: float, timeout: float = 180.0, poll: float = 1.0
) -> Health:
    """After a start: wait until every ingestion query reports progress from this run.

    Raises :class:`JobFailedError` (with the log excerpt) if the job dies or a query fails, and
    :class:`ServiceError` if it is still starting after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        health = inspect(settings)
        if health.state == "failed":
            raise JobFailedError(
                f"the streaming job failed {time.time() - started_at:.0f}s after its start: "
                f"{health.reason}. Last error:\n{health.error_excerpt or '(none)'}\n"
                f"Driver log: {health.log}"
            )
        if health.state in {"held", "stopped"}:
            raise JobFailedError(f"the streaming job is {health.state}: {health.reason}")
        if health.state == "running":
            return health
        if time.monotonic() > deadline:
            raise ServiceError(
                f"the streaming job ({health.instance}) reported no progress within {timeout:.0f}s "
                f"of its start ({health.reason}); it is left running. Check the driver log "
                f"{health.log} and the Spark master's capacity"
            )
        time.sleep(poll)


def check_run(settings: Settings, action: str) -> dict:
    """A supervisor run's first step: the job's health, whether a (re)start is due (the preflight
    runs only then) and, when the job needs a start, its checkpoints (:class:`CheckpointError`
    when one cannot be resumed)."""
    from logstream.runtime.preflight import preflight_due

    health = inspect(settings)
    report = health.as_dict()
    report["start_due"] = preflight_due(action, health.needs_start)
    if health.needs_start and action != "stop":
        report["checkpoints"] = [check.query for check in check_checkpoints(settings)]
    return report


def confirm_start(settings: Settings, outcome: dict, timeout: float) -> dict:
    """After a run's action: when it started the job, wait for the queries' first progress
    (:func:`wait_for_progress`); otherwise say that nothing was started."""
    if outcome["action"] not in {"started", "restarted"}:
        return {"confirmed": False, "reason": f"nothing started ({outcome['action']})"}
    health = wait_for_progress(settings, outcome["started_at"], timeout)
    return {
        "confirmed": True,
        "pid": health.pid,
        "driver_id": health.driver_id,
        "queries": health.queries,
    }
