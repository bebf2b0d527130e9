"""Where a table's day is and how the console reads it: pyarrow over one day's partition folders,
only the columns asked for, never Spark.

Every table is partitioned by a date column (``event_date``, ``quarantine_date``, ``window_date``,
``report_date``); bronze events also by ``event_hour``. The console lists exactly the folders of
the day (and hours) it shows, so a page costs the same on the first day and after a year. Folders
and files whose names start with ``_`` or ``.`` (staging, commit markers, temporary files) are
skipped, as Spark's readers skip them.

The stream writes a file per micro-batch, so a busy day has thousands of small files per table.
What was read is kept (:class:`_DayCache`): a later view of the same day reads only the files
that arrived since.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.storage.fs import local_path

_TIME = pa.timestamp("us", tz="UTC")

#: The Arrow type of every column a console page reads (the tables' Spark types, as Arrow).
COLUMN_TYPES: dict[str, pa.DataType] = {
    # bronze events, late events
    "event_time": _TIME,
    "service": pa.string(),
    "path": pa.string(),
    "user_id": pa.string(),
    "user_agent": pa.string(),
    "ip_address": pa.string(),
    "status_code": pa.int32(),
    "response_time": pa.float64(),
    "processing_time": _TIME,
    "lateness_ms": pa.int64(),
    "kafka_topic": pa.string(),
    "kafka_partition": pa.int32(),
    "kafka_offset": pa.int64(),
    "kafka_timestamp": _TIME,
    # quarantine
    "reason": pa.string(),
    "detail": pa.string(),
    "raw_value": pa.binary(),
    "raw_length": pa.int32(),
    # metric windows
    "window_start": _TIME,
    "window_end": _TIME,
    "total_requests": pa.int64(),
    "error_count": pa.int64(),
    "error_rate": pa.float64(),
    "request_count": pa.int64(),
    "p50_response_time": pa.float64(),
    "p95_response_time": pa.float64(),
    "p99_response_time": pa.float64(),
    # anomalies
    "anomaly_id": pa.string(),
    "kind": pa.string(),
    "entity": pa.string(),
    "observed": pa.float64(),
    "threshold": pa.float64(),
    "baseline": pa.float64(),
    "severity": pa.string(),
    # reconciliation report
    "family": pa.string(),
    "change": pa.string(),
    "count_column": pa.string(),
    "streamed_count": pa.int64(),
    "reconciled_count": pa.int64(),
    "changed_columns": pa.list_(pa.string()),
    # latency report
    "report_hour": _TIME,
    "scope": pa.string(),
    "stage": pa.string(),
    "unit": pa.string(),
    "count": pa.int64(),
    "p50": pa.float64(),
    "p95": pa.float64(),
    "p99": pa.float64(),
    "max": pa.float64(),
    "avg": pa.float64(),
    "alert_level": pa.string(),
}

#: Each table's date partition column; metric tables (and ``reconciled/<family>``) use
#: ``window_date``.
DATE_PARTITION = {
    "events": "event_date",
    "user_events": "event_date",
    "late_events": "event_date",
    "late_user_events": "event_date",
    "quarantine": "quarantine_date",
    "anomalies": "window_date",
    "latency_report": "report_date",
    "reconciliation_report": "report_date",
}


def data_folder(settings: Settings) -> Path:
    """The local folder of ``data_root``; the console reads local tables only."""
    folder = local_path(settings.data_root)
    if folder is None:
        raise ConfigError(
            f"data_root={settings.data_root!r} is not a local folder: the console reads the "
            "tables with plain file I/O on the API server's machine; point LOGSTREAM_DATA_ROOT at "
            "a local path or a mount of it"
        )
    return folder


def day_folder(settings: Settings, table: str, day: date) -> Path:
    """``<data_root>/<table>/<date column>=<day>``."""
    column = DATE_PARTITION.get(table, "window_date")
    return data_folder(settings) / table / f"{column}={day.isoformat()}"


def _visible(name: str) -> bool:
    return not name.startswith(("_", "."))


def parquet_files(folders: Iterable[Path]) -> list[str]:
    """The Parquet files under ``folders`` (recursively), skipping ``_``/``.``-prefixed names."""
    files = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if _visible(d))
            files.extend(
                os.path.join(root, n)
                for n in sorted(names)
                if _visible(n) and n.endswith(".parquet")
            )
    return files


def schema_of(columns: Sequence[str]) -> pa.Schema:
    return pa.schema([(name, COLUMN_TYPES[name]) for name in columns])


#: The column that tells which file (an index into the day's file list) a cached row came from.
FILE_INDEX = "__file"


@dataclass(frozen=True)
class _Read:
    files: tuple[tuple[str, int, int], ...]  # (path, mtime ns, size), in the order read
    table: pa.Table  # the rows of every file, with FILE_INDEX


class _DayCache:
    """What the console read of each (folders, columns), least recently used dropped beyond
    ``max_bytes``.

    The stream only adds files to a day's folders, so a later view reads just the files that
    arrived since and appends them; a file that changed or went (a republished day) makes the
    entry read again from scratch. The API server is long-lived: after the first view of a day, a
    page costs a listing of its folders plus the new files.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, _Read] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> _Read | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple, entry: _Read) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            total = sum(e.table.nbytes for e in self._entries.values())
            while total > self.max_bytes and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                total -= dropped.table.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = _DayCache(max_bytes=512 * 1024 * 1024)
_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="console-read")


def _listing(folders: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    listed = []
    for path in parquet_files(folders):
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            continue
        listed.append((path, stat.st_mtime_ns, stat.st_size))
    return tuple(listed)


def _read_new(files: Sequence[tuple[str, int, int]], first: int, schema: pa.Schema) -> pa.Table:
    """The rows of ``files`` (numbered from ``first``) with :data:`FILE_INDEX`."""

    def one(item: tuple[int, tuple[str, int, int]]) -> pa.Table:
        number, (path, _, _) = item
        table = ds.dataset(path, format="parquet", schema=schema).to_table(use_threads=False)
        return table.append_column(FILE_INDEX, pa.repeat(pa.scalar(number, pa.int32()), len(table)))

    tables = list(_READERS.map(one, enumerate(files, start=first)))
    if not tables:
        return schema.append(pa.field(FILE_INDEX, pa.int32())).empty_table()
    return pa.concat_tables(tables).combine_chunks()


def _day_rows(folders: list[Path], schema: pa.Schema) -> _Read:
    """Every row of the files under ``folders`` (cached, extended with new files)."""
    key = (tuple(str(f) for f in folders), tuple(schema.names))
    files = _listing(folders)
    cached = CACHE.get(key)
    known = set() if cached is None else set(cached.files)
    if cached is not None and known.issuperset(files) and len(known) == len(files):
        return cached
    if cached is not None and known.issubset(files):
        new = [item for item in files if item not in known]
        added = _read_new(new, len(cached.files), schema)
        entry = _Read(cached.files + tuple(new), pa.concat_tables([cached.table, added]))
    else:
        entry = _Read(files, _read_new(files, 0, schema))
    CACHE.put(key, entry)
    return entry


def _folders(settings: Settings, table: str, day: date, hours: Iterable[int] | None) -> list[Path]:
    folder = day_folder(settings, table, day)
    return [folder] if hours is None else [folder / f"event_hour={h}" for h in sorted(set(hours))]


def read_day(
    settings: Settings,
    table: str,
    day: date,
    columns: Sequence[str],
    hours: Iterable[int] | None = None,
    where: ds.Expression | None = None,
) -> pa.Table:
    """``columns`` of ``table`` for ``day`` (and only the ``event_hour`` folders in ``hours``,
    for bronze tables), the rows matching ``where`` (which may only name ``columns``); an empty
    table when nothing was written."""
    folders = _folders(settings, table, day, hours)
    for attempt in (1, 2):
        try:
            rows = _day_rows(folders, schema_of(columns)).table.drop_columns([FILE_INDEX])
            return rows if where is None else rows.filter(where)
        except FileNotFoundError:
            # a day was republished between listing and reading: list again once
            CACHE.clear()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def sample_rows(
    settings: Settings,
    table: str,
    day: date,
    columns: Sequence[str],
    key: str,
    values: Sequence[object],
    limit: int,
) -> dict[object, pa.Table]:
    """Per value of ``values``, up to ``limit`` rows of ``table`` for ``day`` whose ``key``
    column equals it, from the first files that hold such rows (found in the cached ``key``
    column). Wide columns, such as raw payloads, are read from those files only, never cached."""
    keys = _day_rows(_folders(settings, table, day, None), schema_of([key]))
    schema = schema_of(list(dict.fromkeys([*columns, key])))
    samples = {}
    for value in values:
        match = pc.field(key).is_null() if value is None else pc.field(key) == value
        numbers = pc.unique(keys.table.filter(match)[FILE_INDEX]).to_pylist()
        found: list[pa.Table] = []
        rows = 0
        for number in sorted(numbers):
            try:
                piece = ds.dataset(keys.files[number][0], format="parquet", schema=schema).to_table(
                    filter=match, columns=list(columns)
                )
            except FileNotFoundError:
                continue
            found.append(piece.slice(0, limit - rows))
            rows += len(found[-1])
            if rows >= limit:
                break
        samples[value] = pa.concat_tables(found) if found else schema_of(columns).empty_table()
    return samples
