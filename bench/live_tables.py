"""What ``bench/live_latency.py`` reads back from the tables, the status history and ``/proc``.

A micro-batch is committed to a table when its ``_commits/<writer>/<batch>.done`` marker exists
(:mod:`logstream.storage.commits`); its files are ``<writer>-<batch:012d>-<n>.parquet`` in the
table's partition folders. :class:`CommitWatcher` polls the tables and takes the marker's mtime as
the instant the batch's rows became visible, so the poll interval does not add to the figures.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq


@dataclass(frozen=True)
class Batch:
    """One committed micro-batch of one table."""

    table: str
    writer: str
    batch_id: int
    committed_at: float  # epoch seconds (the marker's mtime)
    files: tuple[Path, ...]


def _table_files(root: Path) -> Iterable[Path]:
    """The table's Parquet files, skipping ``_``-prefixed folders (staging, commit markers)."""
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(("_", "."))]
        for name in names:
            if name.endswith(".parquet"):
                yield Path(folder) / name


class CommitWatcher:
    """Polls tables for new commit markers and hands each committed batch to a callback."""

    def __init__(self, data_root: Path, tables: Iterable[str], on_batch: Callable[[Batch], None]):
        self.data_root = data_root
        self.tables = list(tables)
        self.on_batch = on_batch
        self.seen: set[tuple[str, str, str]] = set()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.poll()  # what was committed last

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - a bench keeps measuring; reported at the end
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def poll(self) -> None:
        for table in self.tables:
            root = self.data_root / table
            commits = root / "_commits"
            if not commits.is_dir():
                continue
            new: dict[tuple[str, str], float] = {}
            for writer in os.listdir(commits):
                for name in os.listdir(commits / writer):
                    if not name.endswith(".done") or (table, writer, name) in self.seen:
                        continue
                    try:
                        new[(writer, name)] = (commits / writer / name).stat().st_mtime
                    except FileNotFoundError:  # pruned meanwhile
                        continue
            if not new:
                continue
            prefixes = {f"{writer}-{int(name[:-5]):012d}-": (writer, name) for writer, name in new}
            files: dict[tuple[str, str], list[Path]] = {key: [] for key in new}
            for path in _table_files(root):
                key = prefixes.get(path.name[: -len("00000.parquet")])
                if key is not None:
                    files[key].append(path)
            for (writer, name), mtime in sorted(new.items(), key=lambda item: item[1]):
                self.seen.add((table, writer, name))
                batch = Batch(table, writer, int(name[:-5]), mtime, tuple(files[(writer, name)]))
                self.on_batch(batch)


def read_columns(files: Iterable[Path], columns: list[str]) -> dict[str, list]:
    """The given columns of Parquet files as Python lists (timestamps as epoch seconds)."""
    out: dict[str, list] = {column: [] for column in columns}
    for path in files:
        try:
            table = pq.read_table(path, columns=columns)
        except FileNotFoundError:
            continue
        for column in columns:
            array = table.column(column)
            if str(array.type).startswith("timestamp"):
                micros = array.cast("int64").to_pylist()
                out[column].extend(None if m is None else m / 1e6 for m in micros)
            else:
                out[column].extend(array.to_pylist())
    return out


def coordinates(data_root: Path, tables: Iterable[str]) -> tuple[int, set[tuple[int, int]]]:
    """Rows and distinct (kafka_partition, kafka_offset) over every file of the tables."""
    rows, distinct = 0, set()
    for table in tables:
        for path in _table_files(data_root / table):
            frame = pq.read_table(path, columns=["kafka_partition", "kafka_offset"])
            pairs = zip(frame.column(0).to_pylist(), frame.column(1).to_pylist(), strict=True)
            for pair in pairs:
                rows += 1
                distinct.add(pair)
    return rows, distinct


def percentiles(values: list[float], points: Iterable[float] = (50, 95, 99)) -> list[float | None]:
    """Nearest-rank percentiles (None when there are no values)."""
    if not values:
        return [None for _ in points]
    ordered = sorted(values)
    return [ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] for p in points]


# -- status history ------------------------------------------------------------------------------


def history_lines(status_dir: Path, query: str) -> list[dict]:
    """Every progress line the job appended for ``query`` (``<status_dir>/history/<query>/``)."""
    folder = status_dir / "history" / query
    lines = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


# -- processes -----------------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    after = stat[stat.rindex(")") + 2 :].split()
    return (int(after[11]) + int(after[12])) / os.sysconf("SC_CLK_TCK")


def group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, command) of the live processes in a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        after = stat[stat.rindex(")") + 2 :].split()
        if int(after[2]) == pgid and after[0] not in ("Z", "X"):
            members.append((int(entry.name), command))
    return members


def driver_jvm(pgid: int) -> int | None:
    """The driver's JVM in the job's process group (spark-submit runs SparkSubmit in it)."""
    for pid, command in group_members(pgid):
        if "java" in command.split(" ", 1)[0] and "SparkSubmit" in command:
            return pid
    return None


@dataclass
class RssSampler:
    """Samples the driver JVM's RSS and the whole job's (JVM + Python driver + workers)."""

    pgid: Callable[[], int | None]
    every_s: float = 10.0
    # (epoch s, process group, driver JVM KB, whole job KB)
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            pgid = self.pgid()
            if pgid is None:
                continue
            jvm = driver_jvm(pgid)
            total = sum(rss_kb(pid) for pid, _ in group_members(pgid))
            if jvm is not None:
                self.samples.append((time.time(), pgid, rss_kb(jvm), total))
