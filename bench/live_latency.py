"""Latency of the live pipeline at steady rates, memory over time, and recovery (issue 16).

    make bench-live BENCH_ARGS="--rates 2000,5000,10000 --duration 300 --soak 1800 --out FILE"
    .venv/bin/python bench/live_latency.py --quick        # one rate for 60 s, no soak (~5 min)

1. starts a private Kafka broker (free loopback ports, a temporary folder) and the streaming job
   ``jobs/stream_logs.py`` as the supervisor starts it (``logstream.supervisor.processes.launch``:
   spark-submit, every setting as ``--set``, its own process group) on a private state_dir,
   data_root and checkpoint_root;
2. sends seeded records stamped with the wall clock (``bench/live_load.py``: Kafka's Java client)
   at ``--warmup`` seconds of the first rate (not measured), then each of ``--rates`` for
   ``--duration`` seconds, then ``--soak`` seconds at ``--soak-rate``;
3. recovery, at ``--recovery-rate``: SIGKILL of the job's process group, restarted at once as
   the supervisor would (the time until its first progress and its first commit); then the
   broker stopped for ``--broker-down`` seconds (the time from its return until records sent
   after it are committed; a job that died meanwhile is restarted like after the kill);
4. stops the load, waits until everything sent is committed, and checks that every Kafka record
   is in ``events`` or ``quarantine`` exactly once (distinct partition and offset);
5. prints a Markdown report and appends it to ``--out``.

Measured, with the commit marker's mtime as the instant a micro-batch became visible
(``bench/live_tables.py``):

* append -> committed in ``events``: marker time minus each row's ``kafka_timestamp`` (the
  sender's clock at send; both clocks are this machine's), p50/p95/p99 per phase;
* window-closing record -> the window's rows committed in ``response_time``, ``error_rate`` and
  ``anomalies``: the sender stamps on-time records with the send time, so the record that closes
  a window (the first with event time >= window_end + the family's delay) was sent at
  ``window_end + delay``; the figure is the first commit holding the window minus that instant;
* micro-batch durations from ``<status_dir>/history/ingest_logs/*.jsonl``;
* the driver JVM's RSS (``/proc/<pid>/status`` VmRSS) every 10 s: at 5 and 30 minutes of the
  first driver process, and its trend after 5 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_load import LiveLoad, write_templates
from live_report import render
from live_tables import (
    Batch,
    CommitWatcher,
    RssSampler,
    coordinates,
    cpu_seconds,
    history_lines,
    read_columns,
)

ROOT = Path(__file__).resolve().parents[1]
QUERY = "ingest_logs"
WINDOW_TABLES = ("response_time", "error_rate")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Phase:
    name: str
    rate: float
    start: float = 0.0
    end: float = 0.0
    sent_rate: float = 0.0


@dataclass
class Measurements:
    """What the watcher collected, by commit."""

    events: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (commit, kafka ts s)
    committed_rows: int = 0  # events + quarantine rows seen committed
    first_commit: dict[tuple[str, str], float] = field(default_factory=dict)  # (table, window)
    delays: dict[str, float] = field(default_factory=dict)  # table or anomaly kind -> delay s
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_batch(self, batch: Batch) -> None:
        if batch.table == "events":
            stamps = [
                pq.read_table(path, columns=["kafka_timestamp"]).column(0).cast("int64").to_numpy()
                for path in batch.files
                if path.exists()
            ]
            stamps_s = np.concatenate(stamps) / 1e6 if stamps else np.empty(0)
            with self.lock:
                self.events.append((batch.committed_at, stamps_s))
                self.committed_rows += len(stamps_s)
        elif batch.table == "quarantine":
            rows = sum(pq.ParquetFile(path).metadata.num_rows for path in batch.files)
            with self.lock:
                self.committed_rows += rows
        elif batch.table == "anomalies":
            found = read_columns(batch.files, ["kind", "window_end"])
            for kind, end in zip(found["kind"], found["window_end"], strict=True):
                if kind in self.delays and end is not None:
                    self.first_commit.setdefault((kind, str(end)), batch.committed_at)
        else:
            for end in set(read_columns(batch.files, ["window_end"])["window_end"]):
                self.first_commit.setdefault((batch.table, str(end)), batch.committed_at)

    def commit_latencies(self, start: float, end: float) -> list[float]:
        with self.lock:
            parts = [committed - stamps[(stamps >= start) & (stamps < end)]
                     for committed, stamps in self.events]  # fmt: skip
        return np.concatenate(parts).tolist() if parts else []

    def window_latencies(self, start: float, end: float) -> dict[str, list[float]]:
        """Per table (or anomaly kind): commit minus the closing record's send time, for windows
        whose closing record was sent in [start, end)."""
        out: dict[str, list[float]] = {}
        for (name, window_end), committed in list(self.first_commit.items()):
            closed_by = float(window_end) + self.delays[name]
            if start <= closed_by < end:
                out.setdefault(name, []).append(committed - closed_by)
        return out

    def first_commit_after(self, instant: float, sent_after: float | None = None) -> float | None:
        """The first events commit after ``instant`` (holding a record sent after
        ``sent_after``, if given)."""
        with self.lock:
            times = [
                committed
                for committed, stamps in self.events
                if committed > instant and (sent_after is None or (stamps > sent_after).any())
            ]
        return min(times) if times else None


class Job:
    """The streaming job as the supervisor runs it, restarted at once when it dies (the
    supervisor's watch takes about a second more, which the report adds)."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.pgid: int | None = None
        self.started: list[float] = []
        self.deaths: list[float] = []
        self.expected_down = False
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watchdog, daemon=True)

    def start(self) -> None:
        from logstream.supervisor.processes import PIPELINES, launch

        record = launch(self.settings, PIPELINES)
        self.pgid = record.pid
        self.started.append(time.time())
        self.expected_down = False
        if not self._watch.is_alive():
            self._watch.start()

    def alive(self) -> bool:
        if self.pgid is None:
            return False
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(self.pgid, os.WNOHANG)
        try:
            stat = Path(f"/proc/{self.pgid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return False
        return stat[stat.rindex(")") + 2] not in "ZX"

    def _watchdog(self) -> None:
        while not self._stop.wait(1.0):
            if not self.expected_down and not self.alive():
                self.deaths.append(time.time())
                print("bench: the streaming job died; restarting it", file=sys.stderr)
                self.start()

    def kill(self) -> float:
        """SIGKILL to the whole job (spark-submit's JVM, the Python driver, its workers)."""
        self.expected_down = True
        assert self.pgid is not None
        os.killpg(self.pgid, signal.SIGKILL)
        killed = time.time()
        while self.alive():
            time.sleep(0.05)
        return killed

    def stop(self) -> None:
        from logstream.supervisor.processes import terminate

        self._stop.set()
        self.expected_down = True
        if self.pgid is not None and not terminate(self.pgid, grace_seconds=30):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)


def first_progress_after(status_dir: Path, instant: float) -> float | None:
    """When the first micro-batch with input that started after ``instant`` ended."""
    from logstream.timeutil import parse_iso

    ends = []
    for line in history_lines(status_dir, QUERY):
        stamp = parse_iso(line.get("timestamp"))
        if stamp is not None and stamp.timestamp() > instant and line.get("num_input_rows"):
            ends.append(stamp.timestamp() + (line.get("batch_duration_ms") or 0) / 1000)
    return min(ends) if ends else None


def caught_up(status_dir: Path, since: float, batch_s: float = 5.0) -> bool:
    """True once a micro-batch that started after ``since`` read records within ``batch_s``
    and left less than ``batch_s`` of them behind in Kafka."""
    from logstream.timeutil import parse_iso

    with_input = [line for line in history_lines(status_dir, QUERY) if line.get("num_input_rows")]
    if not with_input:
        return False
    last = with_input[-1]
    stamp, lag = parse_iso(last.get("timestamp")), last.get("kafka_lag")
    return (
        stamp is not None
        and stamp.timestamp() >= since
        and (last.get("batch_duration_ms") or 0) <= batch_s * 1000
        and lag is not None
        and lag <= last["num_input_rows"]
    )


def wait_for(predicate, timeout: float, what: str, every: float = 0.5) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
    return time.time()


def run(args: argparse.Namespace, workdir: Path, cleanups: list) -> str:
    from logstream.catalog.anomalies import FILTER_RULES, HISTORY_RULES
    from logstream.catalog.families import configured_families
    from logstream.config import Settings
    from logstream.kafka.admin import ensure_topics
    from logstream.kafka.broker import KafkaBroker

    windows = {}
    if args.delay is not None:
        windows = {f.name: {"delay": f"{args.delay} seconds"} for f in configured_families()}
    settings = Settings.load(
        env={}, state_dir=workdir / "state", kafka_port=free_port(),
        kafka_controller_port=free_port(), kafka_heap="1g", windows=windows,
    )  # fmt: skip
    delays = {f.name: f.delay_ms / 1000 for f in configured_families(settings.windows)}
    measured = Measurements()
    measured.delays = {name: delays[name] for name in WINDOW_TABLES}
    measured.delays.update(
        {rule.kind: delays[rule.family] for rule in (*HISTORY_RULES, *FILTER_RULES)}
    )
    broker = KafkaBroker(settings)
    cleanups.append(broker.stop)
    broker.start()
    ensure_topics(broker.bootstrap, [settings.logs_topic, settings.user_events_topic],
                  settings.topic_partitions)  # fmt: skip

    templates = workdir / "templates.txt"
    write_templates(templates, args.templates, args.seed, settings.logs_topic,
                    settings.max_record_bytes)  # fmt: skip
    load = LiveLoad(settings, workdir, templates, settings.logs_topic)
    cleanups.append(load.kill)
    load.start()
    load.wait_started()

    job = Job(settings)
    cleanups.append(job.stop)
    print("bench: starting the streaming job ...", file=sys.stderr)
    job.start()
    status_dir = Path(settings.status_dir)
    wait_for(lambda: (status_dir / f"{QUERY}.json").exists(), 240, "the job's first status")
    data_root = Path(settings.data_root)
    watcher = CommitWatcher(data_root, ("events", "quarantine", *WINDOW_TABLES, "anomalies"),
                            measured.on_batch)  # fmt: skip
    watcher.start()
    rss = RssSampler(lambda: job.pgid)
    rss.start()
    first_pgid = job.pgid

    phases: list[Phase] = []

    def hold(phase: Phase, seconds: float) -> Phase:
        print(f"bench: {phase.name} at {phase.rate:,.0f} ev/s for {seconds:.0f}s", file=sys.stderr)
        load.set_rate(phase.rate)
        phase.start = time.time()
        time.sleep(seconds)
        phase.end = time.time()
        phase.sent_rate = load.rate_between(phase.start, phase.end)
        phases.append(phase)
        return phase

    hold(Phase("warm-up", args.rates[0]), args.warmup)
    # the first micro-batches of a cold JVM take tens of seconds: measure from a caught-up job
    with contextlib.suppress(RuntimeError):
        wait_for(lambda: caught_up(status_dir, phases[-1].start), args.catch_up, "catching up", 2)
    phases[-1].end = time.time()
    for rate in args.rates:
        hold(Phase(f"{rate:,} ev/s", rate), args.duration)
    if args.soak:
        hold(Phase("soak", args.soak_rate), args.soak)

    recovery: dict[str, float | None] = {}
    if args.recovery:
        load.set_rate(args.recovery_rate)
        time.sleep(args.settle)
        killed = job.kill()
        job.start()
        recovery["kill_restart_s"] = job.started[-1] - killed
        wait_for(lambda: first_progress_after(status_dir, killed), 300, "progress after SIGKILL")
        recovery["kill_progress_s"] = first_progress_after(status_dir, killed) - killed
        wait_for(lambda: measured.first_commit_after(killed, killed), 120, "a commit after kill")
        recovery["kill_commit_s"] = measured.first_commit_after(killed, killed) - killed
        time.sleep(args.settle)
        deaths_before = len(job.deaths)
        print(f"bench: broker down for {args.broker_down}s", file=sys.stderr)
        down = time.time()
        broker.stop()
        time.sleep(max(0.0, args.broker_down - (time.time() - down)))
        broker.start()
        up = time.time()
        recovery["broker_down_s"] = up - down
        wait_for(lambda: measured.first_commit_after(up, up), 300, "a commit after the broker")
        recovery["broker_resume_s"] = measured.first_commit_after(up, up) - up
        recovery["broker_job_died"] = len(job.deaths) - deaths_before
        time.sleep(args.settle)
        recovered = Phase("recovery", args.recovery_rate, killed, time.time())
        recovered.sent_rate = load.rate_between(recovered.start, recovered.end)
        phases.append(recovered)

    sender_cpu = cpu_seconds(load.process.pid) if load.process else 0.0
    stats = load.stop()
    end_offsets = topic_records(settings.kafka_bootstrap, settings.logs_topic)
    print(f"bench: sent {stats.sent:,}, acked {stats.acked:,}; draining ...", file=sys.stderr)
    with contextlib.suppress(RuntimeError):
        wait_for(lambda: measured.committed_rows >= end_offsets, 300, "the job to catch up", 2)
    time.sleep(5)
    watcher.stop()
    rss.stop()
    job.stop()
    rows, distinct = coordinates(data_root, ("events", "quarantine"))
    integrity = {
        "topic": end_offsets, "acked": stats.acked, "failed": stats.failed, "rows": rows,
        "distinct": len(distinct), "duplicates": rows - len(distinct),
        "missing": end_offsets - len(distinct),
    }  # fmt: skip
    return render(
        args=args, phases=phases, measured=measured, batches=history_lines(status_dir, QUERY),
        rss=[s for s in rss.samples if s[1] == first_pgid], first_start=job.started[0],
        recovery=recovery, integrity=integrity, sender_cpu=sender_cpu,
        watcher_errors=watcher.errors, restarts=len(job.started) - 1,
    )  # fmt: skip


def topic_records(bootstrap: str, topic: str) -> int:
    """Records in the topic: the sum of its partitions' end offsets."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="logstream-bench-live")
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="2000,5000,10000", help="ev/s, comma-separated")
    parser.add_argument("--duration", type=float, default=300, help="seconds per rate")
    parser.add_argument("--warmup", type=float, default=60, help="seconds, not measured")
    parser.add_argument(
        "--catch-up", type=float, default=600, help="most seconds the warm-up then waits for a "
        "micro-batch of under 5 s that leaves no backlog"
    )  # fmt: skip
    parser.add_argument("--soak", type=float, default=1800, help="seconds at --soak-rate")
    parser.add_argument("--soak-rate", type=float, default=5000)
    parser.add_argument("--recovery-rate", type=float, default=5000)
    parser.add_argument("--no-recovery", dest="recovery", action="store_false")
    parser.add_argument("--broker-down", type=float, default=30, help="seconds")
    parser.add_argument("--settle", type=float, default=60, help="seconds around each recovery")
    parser.add_argument("--delay", type=int, help="every family's watermark delay, seconds")
    parser.add_argument("--templates", type=int, default=60_000, help="generated records cycled")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help="smoke: 2000 ev/s for 60 s, no soak, 10 s delays"
    )
    parser.add_argument("--out", type=Path, help="append the Markdown report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.quick:
        args.rates, args.duration, args.warmup, args.soak = "2000", 60, 20, 0
        args.settle = min(args.settle, 20)
        args.recovery_rate = 2000
        args.catch_up = min(args.catch_up, 180)
        args.delay = 10 if args.delay is None else args.delay
    args.rates = [int(rate) for rate in str(args.rates).split(",") if rate]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="logstream-bench-live-"))
    cleanups: list = []

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        report = run(args, workdir, cleanups)
    except KeyboardInterrupt:
        print("bench: interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the clean-up itself is not interrupted
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as exc:  # noqa: BLE001 - every clean-up step gets its turn
                print(f"bench: clean-up step failed: {exc}", file=sys.stderr)
        if args.keep:
            print(f"bench: kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as out:
            out.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
