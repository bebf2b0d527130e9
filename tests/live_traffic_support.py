"""What ``tests/integration/test_live_traffic.py`` needs around the real streaming job: the job
as a process of its own, sender templates with seconds-late records, the tables read back as
plain Parquet (pyarrow, no Spark) and the lateness of each event recomputed from its batch.

Nothing here computes a metric: expected values come from :mod:`tests.oracle`.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pyarrow.dataset as ds
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from logstream.config import Settings
from logstream.runtime.spark import spark_submit_command
from logstream.supervisor.processes import JOB_PATH, job_arguments, terminate

MS = timedelta(milliseconds=1)


# -- the streaming job as a process ---------------------------------------------------------------


class StreamJob:
    """``jobs/stream_logs.py`` under spark-submit, as the supervisor starts it (every setting as
    ``--set``, a session of its own), with Spark's scratch space in ``local_dir`` so that what a
    SIGKILL leaves behind stays in the test's folder."""

    def __init__(self, settings: Settings, log_path: Path, local_dir: Path) -> None:
        local_dir.mkdir(parents=True, exist_ok=True)
        self.command = spark_submit_command(
            settings,
            JOB_PATH,
            job_arguments(settings, ["logs"]),
            extra_conf={"spark.local.dir": str(local_dir)},
        )
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its process group is the job: JVM, Python driver, workers
        )

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise AssertionError(f"the streaming job exited ({code}):\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL to the whole process group: no shutdown hook, no finally block runs."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._wait_group_gone(self.process.pid)
        self._close_log()

    def stop(self) -> bool:
        """SIGTERM as the supervisor stops it (queries, then Spark); True if it exited cleanly."""
        if self.process is None or self.process.poll() is not None:
            self._close_log()
            return self.process is not None and self.process.returncode == 0
        gone = terminate(self.process.pid, grace_seconds=60)
        if not gone:
            self.kill()
        code = self.process.wait(timeout=30)
        self._close_log()
        return gone and code == 0

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    @staticmethod
    def _wait_group_gone(pgid: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, job: StreamJob, every: float = 0.25
) -> Any:
    """Poll ``predicate`` until it is truthy (returned); fail if the job dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        job.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


# -- sender templates -----------------------------------------------------------------------------


def shorten_lateness(templates: Path, seconds: Sequence[float]) -> int:
    """Give every other late template a lag of a few seconds (cycling through ``seconds``);
    the others stay minutes to hours behind the clock. Returns how many were shortened.

    The file is ``bench/live_load.write_templates``'s: ``kind<TAB>lag ms<TAB>key<TAB>value``.
    A seconds-late record is late for the families with a shorter delay and on time for those
    with a longer one, depending on the micro-batch it lands in.
    """
    lines = templates.read_text().splitlines()
    shortened, late_seen = 0, 0
    for number, line in enumerate(lines):
        kind, lag, rest = line.split("\t", 2)
        if kind == "N" or lag == "0":
            continue
        if late_seen % 2 == 0:
            lag = str(round(seconds[shortened % len(seconds)] * 1000))
            lines[number] = f"{kind}\t{lag}\t{rest}"
            shortened += 1
        late_seen += 1
    templates.write_text("\n".join(lines) + "\n")
    return shortened


def clock_record(event_time: datetime) -> tuple[bytes, bytes]:
    """A valid JSON log record (key, value) of a service of its own at ``event_time``: sent
    after the traffic, it moves the event-time high-water mark past every window of it."""
    stamp = event_time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{event_time.microsecond // 1000:03d}Z"
    value = (
        f'{{"timestamp":"{stamp}","level":"INFO","service":"clock","message":"GET /tick 200",'
        '"ip_address":"192.0.2.1","user_id":"user-clock","request_id":"clock-0001",'
        '"response_time":0.01,"status_code":200}'
    )
    return b"clock", value.encode()


def send_record(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    """Send one record and wait for the broker's acknowledgement."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(topic, key=key, value=value).get(timeout=60)
    finally:
        producer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's end offset: the topic holds offsets ``0 .. end - 1`` of each."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="logstream-live-test")
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


# -- the tables as plain Parquet ------------------------------------------------------------------


def read_rows(table_root: Path, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Every committed-or-visible row of a table (pyarrow skips ``_staging`` and ``_commits``,
    as Spark's reader does); timestamps come back as aware UTC datetimes."""
    if not table_root.is_dir():
        return []
    dataset = ds.dataset(table_root, format="parquet", partitioning="hive")
    return dataset.to_table(columns=list(columns)).to_pylist()


def staged_batches(table_root: Path) -> list[str]:
    """Batches being written to a table right now (``_staging/<writer>/<batch>``)."""
    staging = table_root / "_staging"
    try:
        return [f"{w.name}/{b.name}" for w in staging.iterdir() for b in w.iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def uncommitted_traces(table_root: Path) -> list[str]:
    """What an interrupted batch could leave visible: data files of a (writer, batch) without
    its ``.done`` marker, manifests, staged files."""
    commits = table_root / "_commits"
    done = {
        f"{writer.name}-{int(marker.name[:-5]):012d}"
        for writer in (commits.iterdir() if commits.is_dir() else [])
        for marker in writer.iterdir()
        if marker.name.endswith(".done")
    }
    traces = [str(p) for p in commits.glob("*/*.manifest")] if commits.is_dir() else []
    for folder, subfolders, names in os.walk(table_root):
        if Path(folder).name == "_staging":
            traces += [str(Path(folder) / name) for name in subfolders]
        subfolders[:] = [name for name in subfolders if not name.startswith(("_", "."))]
        for name in names:
            if name.endswith(".parquet") and name[: -len("-00000.parquet")] not in done:
                traces.append(str(Path(folder) / name))
    return traces


# -- lateness, recomputed from the batches --------------------------------------------------------


def recompute_lateness(events: list[dict[str, Any]]) -> dict[str, int | None]:
    """Each event's lateness in ms, from the data alone: the micro-batches are the distinct
    ``processing_time`` values (one per batch, the same when a batch is replayed), and an event's
    lateness is the largest event time of the earlier batches minus its own (None in the first
    batch)."""
    by_batch: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_batch[event["processing_time"]].append(event)
    lateness: dict[str, int | None] = {}
    high_water: datetime | None = None
    for batch_time in sorted(by_batch):
        members = by_batch[batch_time]
        for event in members:
            lateness[event["event_id"]] = (
                None if high_water is None else (high_water - event["event_time"]) // MS
            )
        newest = max(event["event_time"] for event in members)
        high_water = newest if high_water is None else max(high_water, newest)
    return lateness


# -- comparing with the oracle --------------------------------------------------------------------

REL = 1e-9


def compare_rows(
    table: str,
    got_rows: list[dict[str, Any]],
    want_rows: list[dict[str, Any]],
    keys: Sequence[str],
    exact: Iterable[str] = (),
    approx: Iterable[str] = (),
    sets: Iterable[str] = (),
) -> dict[tuple, tuple[dict[str, Any], dict[str, Any]]]:
    """Assert the table's rows are the oracle's, window for window; returns (got, want) by key."""

    def key_of(row: dict[str, Any]) -> tuple:
        return tuple(row[k] for k in keys)

    got = {key_of(row): row for row in got_rows}
    want = {key_of(row): row for row in want_rows}
    assert len(got) == len(got_rows), f"{table}: a window was written more than once"
    assert set(got) == set(want), (
        f"{table}: windows differ: missing {sorted(set(want) - set(got), key=str)[:3]}, "
        f"extra {sorted(set(got) - set(want), key=str)[:3]}"
    )
    for key, row in want.items():
        for column in exact:
            assert got[key][column] == row[column], (table, key, column)
        for column in approx:
            expected, actual = row[column], got[key][column]
            if expected is None:
                assert actual is None, (table, key, column)
            else:
                assert math.isclose(actual, expected, rel_tol=REL, abs_tol=1e-12), (
                    table,
                    key,
                    column,
                    actual,
                    expected,
                )
        for column in sets:
            assert sorted(got[key][column]) == sorted(row[column]), (table, key, column)
    return {key: (got[key], want[key]) for key in want}
