"""Seconds, not minutes, from a dead driver to its restart: a watch that polls the job between
watchdog steps.

:func:`pulse` is the cheap check, read-only and lock-free: the recorded driver process is alive
(one ``/proc`` read; for a driver on a cluster, one question to the cluster) and no query of
this run reports a failure in its status file. No Kafka and no process-table scan, so it can run
every second. :func:`watch_job` polls it and leaves every
decision to :func:`~logstream.supervisor.actions.supervise` (the supervisor lock, the restart
policy with its backoff and restart-loop page): at once when the pulse finds the driver dead, a
query failed or no job recorded, and every ``full_check_s`` otherwise, for what only the full
step sees (a stall needs Kafka's offsets; an unrecorded or second instance needs the process
table). A job held stopped by an operator ends the watch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from logstream.config import Settings
from logstream.supervisor.actions import Outcome, supervise
from logstream.supervisor.deploy import driver_for
from logstream.supervisor.health import current_statuses, judge_queries
from logstream.supervisor.state import read_hold, read_record

log = logging.getLogger(__name__)

#: How often the watch reads the pid and status files.
POLL_SECONDS = 1.0
#: How often the watch takes a full supervisor step while the pulse is fine.
FULL_CHECK_SECONDS = 60.0
#: How often the watch asks whether it should hand over (``should_end``).
END_CHECK_SECONDS = 5.0
#: After a step that launched nothing although the pulse asked for one, the next is not sooner.
RECHECK_SECONDS = 5.0
#: Steps kept in the report (the task log has every one).
STEPS_KEPT = 50


@dataclass(frozen=True)
class Pulse:
    """What :func:`pulse` found."""

    state: str  # alive | dead | failed | absent | held
    reason: str
    pid: int | None = None
    driver_id: str = ""

    @property
    def needs_step(self) -> bool:
        """The job needs a supervisor step now (restart, start or adoption)."""
        return self.state in {"dead", "failed", "absent"}


def pulse(settings: Settings, now: float | None = None) -> Pulse:
    """The job's pulse from the hold flag, the pid file, ``/proc/<pid>`` and this run's status
    files. Read-only; a full :func:`~logstream.supervisor.health.inspect` decides what to do."""
    now = time.time() if now is None else now
    held = read_hold(settings)
    if held is not None:
        return Pulse("held", f"stopped by an operator at {held.get('at')}")
    record = read_record(settings)
    if record is None:
        return Pulse("absent", "no job recorded (no pid file)")
    ref, gone_reason = driver_for(settings).check(record, settings)
    ids = {"pid": record.pid or None, "driver_id": record.driver_id}
    if ref is None:
        return Pulse("dead", gone_reason, **ids)
    current = current_statuses(settings, record.started_at, launched=not record.adopted)
    verdict = judge_queries(
        current,
        record.pipelines,
        record.started_at,
        now,
        settings.supervisor_stall_seconds,
        lambda: None,  # stalls are the full step's (they need Kafka)
    )
    if verdict.state == "failed":
        return Pulse("failed", verdict.reason, **ids)
    return Pulse("alive", verdict.reason, **ids)


@dataclass
class WatchReport:
    """What one watch did (returned to Airflow as XCom)."""

    watched_s: float = 0.0
    ended: str = ""
    steps: list[dict] = field(default_factory=list)  # the latest STEPS_KEPT supervisor steps
    restarts: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def watch_job(
    settings: Settings,
    duration_s: float,
    *,
    poll_s: float = POLL_SECONDS,
    full_check_s: float = FULL_CHECK_SECONDS,
    should_end: Callable[[], str | None] = lambda: None,
    before_start: Callable[[], object] | None = None,
    step: Callable[[Callable[[], object] | None], Outcome] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WatchReport:
    """Watch the job for ``duration_s`` seconds, polling :func:`pulse` every ``poll_s``.

    ``step(before_start)`` is one supervisor step (:func:`supervise` by default, which calls
    ``before_start``, e.g. the preflight, right before a start). It runs when the pulse needs it,
    no sooner than a backoff the previous step reported, and every ``full_check_s``.
    ``should_end`` is asked every :data:`END_CHECK_SECONDS`; a reason it returns ends the watch
    (an operator's run waiting behind this one). :class:`~logstream.supervisor.RestartLoopError`
    and the other errors of a step propagate: the page is sent and the watch is over."""
    if step is None:

        def step(hook: Callable[[], object] | None) -> Outcome:
            return supervise(settings, before_start=hook)

    log.info("watch: polling the job every %.0fs for %.0fs", poll_s, duration_s)
    report = WatchReport()
    started = clock()
    next_full = started + full_check_s
    next_end_check = started
    not_before = started
    while True:
        moment = clock()
        report.watched_s = round(moment - started, 1)
        if moment >= started + duration_s:
            report.ended = f"watched for {duration_s:.0f}s"
            return report
        if moment >= next_end_check:
            next_end_check = moment + END_CHECK_SECONDS
            reason = should_end()
            if reason:
                report.ended = reason
                return report
        found = pulse(settings)
        if found.state == "held":
            report.ended = f"the job is held: {found.reason}"
            return report
        if (found.needs_step and moment >= not_before) or moment >= next_full:
            if found.needs_step:
                log.warning("watch: job %s (%s); supervisor step now", found.state, found.reason)
            outcome = step(before_start)
            done = clock()
            report.steps = [
                *report.steps,
                {"at_s": round(done - started, 1), "pulse": found.state, **outcome.as_dict()},
            ][-STEPS_KEPT:]
            report.restarts += outcome.action == "restarted"
            if outcome.launched or outcome.action == "waiting" or found.needs_step:
                log.info("watch: step %s (%s), pid %s", outcome.action, outcome.reason, outcome.pid)
            next_full = done + full_check_s
            if outcome.action == "waiting":
                not_before = done + outcome.backoff_remaining_s
            elif not outcome.launched:
                not_before = done + RECHECK_SECONDS
            continue
        sleep(poll_s)
