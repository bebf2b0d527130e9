"""What the supervisor tells on-call: one :class:`~logstream.alerts.Alert` per event, built from
what the supervisor found. Pure; :mod:`logstream.supervisor.actions` sends them.

Dedup keys make repeats of one event a single alert: one per refused checkpoint, per kept
instance, per restart, and one page per restart loop and restart window.
"""

from __future__ import annotations

from logstream.alerts import Alert
from logstream.supervisor.checkpoints import CheckpointError
from logstream.supervisor.health import Health
from logstream.supervisor.policy import Decision, window_bucket


def checkpoint_refused(exc: CheckpointError) -> Alert:
    """Critical: the job is not started on a corrupt or incompatible checkpoint."""
    return Alert(
        dedup_key=f"supervisor:checkpoint:{exc.query}",
        kind="checkpoint_invalid",
        severity="critical",
        summary=f"streaming job not started: checkpoint of {exc.query} refused",
        details={
            "query": exc.query,
            "file": f"{exc.path}/{exc.file}",
            "problem": exc.problem,
            "message": str(exc),
        },
        links={"checkpoint": exc.path},
    )


def duplicates_stopped(health: Health, checkpoint_root: str) -> Alert:
    """Warning: extra job instances on one checkpoint were stopped, the recorded one kept."""
    return Alert(
        dedup_key=f"supervisor:duplicate:{health.pid}",
        kind="pipeline_failure",
        severity="warning",
        summary=(
            f"stopped {len(health.duplicates)} extra streaming job instance(s) "
            f"{health.duplicates} on {checkpoint_root}; kept pid {health.pid}"
        ),
        details={"kept": health.pid, "stopped": health.duplicates},
    )


def restart_loop(health: Health, decision: Decision, window_minutes: int, now: float) -> Alert:
    """Critical page: the job keeps failing and is not restarted; carries the last error."""
    excerpt = health.error_excerpt or "(the driver log has no error lines)"
    return Alert(
        dedup_key=f"supervisor:restart_loop:{window_bucket(now, window_minutes)}",
        kind="restart_loop",
        severity="critical",
        summary=(
            f"logstream streaming job keeps failing: {decision.restarts_in_window} restarts "
            f"in {window_minutes} min; not restarting. Last state: {health.state}: {health.reason}"
        ),
        details={
            "restarts_in_window": decision.restarts_in_window,
            "window_minutes": window_minutes,
            "reason": health.reason,
            "last_error": excerpt,
        },
        links={"log": health.log},
    )


def restarted(health: Health, now: float) -> Alert:
    """Warning: the job died or stalled and was restarted from its checkpoint."""
    return Alert(
        dedup_key=f"supervisor:restart:{int(now)}",
        kind="pipeline_failure",
        severity="warning",
        summary=f"streaming job restarted from its checkpoint: {health.reason}",
        details={"reason": health.reason, "last_error": health.error_excerpt},
        links={"log": health.log},
    )
