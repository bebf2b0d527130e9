"""What the cluster tests check and how they break the cluster: the stored tables against the
independent oracle (:mod:`tests.oracle`), the driver's JVM on its worker, the job's progress."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from logstream.config import Settings
from logstream.devtools.generator import GeneratorConfig, generate_logs
from logstream.kafka.admin import ensure_topics
from logstream.storage.fs import Storage, join
from logstream.supervisor import watch_job
from logstream.supervisor.processes import process_info
from logstream.supervisor.state import read_history


def ingest_totals(settings: Settings) -> dict:
    """The ``ingest_logs`` query's cumulative totals from its status file ({} before any)."""
    text = Storage(settings).read_text(join(settings.status_dir, "ingest_logs.json"))
    try:
        return json.loads(text).get("totals", {}) if text else {}
    except json.JSONDecodeError:  # caught mid-write: no totals yet
        return {}


def supervised_stream(run: Settings, topic: str, count: int, seed: int, kafka_broker, **overrides):
    """``run`` for a supervised stream of generated logs on ``topic`` (created with 4 partitions):
    many small batches (the failures land mid-stream), a one-second restart backoff, no stall
    restarts; and the ``count`` generated records (no late ones, spread over 1,000 simulated
    seconds), not yet sent."""
    ensure_topics(kafka_broker.bootstrap, [topic], 4)
    records = generate_logs(
        GeneratorConfig(
            seed=seed,
            count=count,
            events_per_second=count / 1_000,
            late_share=0.0,
            logs_topic=topic,
        )
    )
    settings = run.replace(
        logs_topic=topic,
        user_events_topic=f"{topic}-user-events",
        trigger_interval="1 second",
        max_offsets_per_trigger=1_000,
        supervisor_backoff_seconds=1,
        supervisor_stall_seconds=3_600,
        **overrides,
    )
    return settings, records


def wait_for_valid(
    run: Settings, minimum: int, what: str, output: Callable[[str], str], timeout: float = 900
) -> None:
    """Wait until the job landed ``minimum`` valid events; on timeout the AssertionError shows
    the totals and ``output(driver id)`` (the driver's last log lines)."""
    from logstream.supervisor import inspect

    try:
        wait_until(
            f"{what}: {minimum} valid events landed",
            lambda: ingest_totals(run).get("valid", 0) >= minimum,
            timeout,
        )
    except AssertionError as exc:
        driver = inspect(run).driver_id
        raise AssertionError(f"{exc}; totals {ingest_totals(run)}\n{output(driver)}") from None


def wait_until(what: str, check: Callable[[], object], timeout: float, poll: float = 1.0):
    """Poll ``check`` until it returns something truthy (returned); AssertionError naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(poll)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def driver_jvm(driver_id: str) -> int | None:
    """The pid of the JVM a worker started for ``driver_id`` (DriverWrapper), if it runs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        info = process_info(int(entry.name))
        if info is None or not info.alive:
            continue
        command = " ".join(info.cmdline)
        if "org.apache.spark.deploy.worker.DriverWrapper" in command and driver_id in command:
            return info.pid
    return None


def sigkill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def processes_in(folder: Path) -> list[int]:
    """Live processes whose working directory is ``folder`` (a driver's work folder: its JVM and
    the Python driver PythonRunner started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == folder:
                info = process_info(int(entry.name))
                if info is not None and info.alive:
                    found.append(info.pid)
        except OSError:
            continue
    return found


def watch_until_restart(run, restarts_before: int, timeout: float) -> float:
    """Run the supervisor's watch until it restarted the job once more; seconds it took."""
    started = time.monotonic()
    report = watch_job(
        run,
        timeout,
        poll_s=1.0,
        should_end=lambda: "restarted" if len(read_history(run)) > restarts_before else None,
    )
    assert report.restarts == 1, report.as_dict()
    return time.monotonic() - started
