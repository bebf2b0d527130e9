"""How the streaming job is doing: ``running``, ``starting``, ``stalled``, ``failed``,
``stopped`` or ``held``.

:func:`inspect` gathers the evidence (pid file, hold, process table, this run's status files, the
driver log) and :func:`judge_queries` gives the verdict on a live job from its status files
alone: a failed query wins; progress older than ``supervisor_stall_seconds`` is a stall only
while Kafka holds records the checkpoint has not committed (an idle stream is not stalled); an
ingestion query without its first progress means the job is still starting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from logstream.config import Settings
from logstream.supervisor.deploy import driver_for
from logstream.supervisor.driver_log import EXCERPT_BYTES, error_excerpt
from logstream.supervisor.lag import job_kafka_lag
from logstream.supervisor.state import SupervisorPaths, read_hold, read_record
from logstream.timeutil import parse_iso


@dataclass(frozen=True)
class Health:
    """What :func:`inspect` found."""

    state: str  # running | starting | stalled | failed | stopped | held
    reason: str
    pid: int | None = None  # the local driver's process (spark_deploy_mode=client)
    alive: bool = False  # a live, verified instance of the job (safe to signal or kill)
    started_at: float | None = None
    pipelines: list[str] = field(default_factory=list)
    recorded: bool = True  # False: a job process nobody recorded (adopted by supervise)
    note: str = ""  # why the pid file was not used, when an unrecorded instance was found
    # extra instances on the same checkpoint (pids, or the cluster's driver ids)
    duplicates: list[int | str] = field(default_factory=list)
    queries: dict[str, dict] = field(default_factory=dict)
    error_excerpt: str = ""
    log: str = ""
    # the cluster's id of the driver (spark_deploy_mode=cluster: driver-..., application_...,
    # namespace:pod) and where it runs
    driver_id: str = ""
    driver_detail: str = ""

    @property
    def instance(self) -> int | str | None:
        """What identifies the job's instance to its driver (:mod:`~.drivers`): pid or id."""
        return self.pid if self.pid is not None else (self.driver_id or None)

    @property
    def needs_start(self) -> bool:
        return self.state in {"stopped", "failed", "stalled"}

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """The health of a live job as this run's status files tell it."""

    state: str  # running | starting | stalled | failed
    reason: str
    exception: str = ""  # the failed query's exception, shown when the driver log has no error


def _epoch(text: str | None) -> float | None:
    """ISO-8601 text as epoch seconds; None when empty or unreadable."""
    try:
        moment = parse_iso(text)
    except ValueError:
        return None
    return None if moment is None else moment.timestamp()


def _has_progress(status: dict | None) -> bool:
    return bool(status) and ("batch_id" in status or status.get("state") == "idle")


def judge_queries(
    current: dict[str, dict],
    pipelines: Sequence[str],
    started_at: float,
    now: float,
    stall_seconds: int,
    kafka_lag: Callable[[], int | None],
) -> Verdict:
    """The verdict on a live job started at ``started_at`` running ``pipelines``, from this run's
    status files (``current``, by query name). ``kafka_lag`` is asked only when some query has
    made no progress for over ``stall_seconds`` (it may ask the broker)."""
    failed = {n: s for n, s in current.items() if s.get("state") == "failed" or s.get("exception")}
    if failed:
        name, status = sorted(failed.items())[0]
        first_line = (status.get("exception") or "terminated").strip().splitlines()[0][:300]
        return Verdict(
            "failed",
            f"query {name} terminated with an exception: {first_line}",
            status.get("exception") or "",
        )

    expected = {f"ingest_{p}" for p in pipelines} | set(current)
    ages = {
        name: now - (_epoch(current[name].get("updated_at")) or started_at)
        if name in current
        else now - started_at
        for name in expected
    }
    old = sorted(name for name in expected if ages[name] > stall_seconds)
    if old:
        lag = kafka_lag()
        if lag:
            worst = max(old, key=lambda name: ages[name])
            return Verdict(
                "stalled",
                f"no progress from {worst} for {ages[worst]:.0f}s "
                f"(limit {stall_seconds}s) while Kafka lag is {lag}",
            )
    waiting = sorted(
        f"ingest_{p}" for p in pipelines if not _has_progress(current.get(f"ingest_{p}"))
    )
    if waiting:
        return Verdict("starting", f"waiting for the first progress of {waiting}")
    return Verdict("running", "all queries report progress")


def _query_summary(status: dict, now: float) -> dict:
    updated = _epoch(status.get("updated_at"))
    return {
        "state": status.get("state"),
        "updated_at": status.get("updated_at"),
        "age_s": round(now - updated, 1) if updated else None,
        "batch_id": status.get("batch_id"),
        "kafka_lag": status.get("kafka_lag"),
        "totals": status.get("totals", {}),
        "exception": (status.get("exception") or "")[:EXCERPT_BYTES] or None,
    }


#: How far before its known start time a status file may still be a job's own: the start of a
#: job found in the process table is known to about a second (the kernel's boot time is whole
#: seconds); one the supervisor launched is recorded after the launch, before the job can write.
START_UNCERTAINTY_S = 1.0


def current_statuses(
    settings: Settings, started_at: float, launched: bool = True
) -> dict[str, dict]:
    """The status files written by the run of the job started at ``started_at``, by query name
    (older ones belong to an earlier run, also one that died a moment before a quick restart).
    ``launched``: ``started_at`` was recorded by the supervisor's launch, not read from the
    process table."""
    from logstream.storage.fs import Storage
    from logstream.stream.status import read_statuses

    since = started_at if launched else started_at - START_UNCERTAINTY_S
    return {
        status["query"]: status
        for status in read_statuses(settings.status_dir, Storage(settings))
        if status.get("query") and (_epoch(status.get("updated_at")) or 0) >= since
    }


def inspect(settings: Settings, now: float | None = None) -> Health:
    """The job's health from the pid file, where the job's driver runs (the process table, or the
    cluster: :mod:`~logstream.supervisor.drivers`), the status files and, to tell a stall from an
    idle stream, Kafka's end offsets against the checkpoints. Read-only."""
    now = time.time() if now is None else now
    paths = SupervisorPaths.of(settings)
    driver = driver_for(settings)
    record = read_record(settings)
    held = read_hold(settings)
    running = driver.find_running(settings)
    ref, gone_reason = (None, "")
    if record is not None:
        ref, gone_reason = driver.check(record, settings)
    recorded = ref is not None
    if ref is None and running:
        ref = running[0]
    duplicates = [r.id for r in running if ref is not None and r.id != ref.id]
    excerpt_offset = record.log_offset if record else 0

    if ref is None:
        if held:
            return Health("held", f"stopped by an operator at {held.get('at')}", log=str(paths.log))
        if record is None:
            return Health("stopped", "not started yet (no pid file)", log=str(paths.log))
        return Health(
            "failed",
            gone_reason,
            pid=record.pid or None,
            driver_id=record.driver_id,
            started_at=record.started_at,
            pipelines=record.pipelines,
            error_excerpt=error_excerpt(paths.log, excerpt_offset),
            log=str(paths.log),
        )

    started_at = record.started_at if recorded and record else (ref.started_at or now)
    # an unrecorded instance of a cluster does not say which pipelines it runs: the last record's
    pipelines = record.pipelines if record and (recorded or ref.pid is None) else ref.pipelines
    launched = bool(recorded and record and not record.adopted)
    current = current_statuses(settings, started_at, launched)
    verdict = judge_queries(
        current,
        pipelines,
        started_at,
        now,
        settings.supervisor_stall_seconds,
        lambda: job_kafka_lag(settings, pipelines, current),
    )
    excerpt = ""
    if verdict.state in {"failed", "stalled"}:
        excerpt = error_excerpt(paths.log, excerpt_offset) or verdict.exception
    return Health(
        verdict.state,
        verdict.reason,
        pid=ref.pid,
        driver_id="" if ref.pid is not None else str(ref.id),
        driver_detail=ref.detail,
        alive=True,
        started_at=started_at,
        pipelines=pipelines,
        recorded=recorded,
        note=gone_reason,
        duplicates=duplicates,
        queries={name: _query_summary(status, now) for name, status in current.items()},
        error_excerpt=excerpt[:EXCERPT_BYTES],
        log=str(paths.log),
    )
