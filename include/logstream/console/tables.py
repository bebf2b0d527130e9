"""Where a table's day is and how the console reads it: pyarrow over one day's partition folders,
only the columns asked for, never Spark.

Every table is partitioned by a date column (``event_date``, ``quarantine_date``, ``window_date``,
``report_date``); bronze events also by ``event_hour``. The console lists exactly the folders of
the day (and hours) it shows, so a page costs the same on the first day and after a year. Folders
and files whose names start with ``_`` or ``.`` (staging, commit markers, temporary files) are
skipped, as Spark's readers skip them.

The stream writes a file per micro-batch, so a busy day has thousands of small files per table,
and opening them is what a first view costs (each file's footer and pages, under a millisecond
each, adds up to seconds). What was read of each folder is kept in memory (:class:`_DayCache`)
and on disk (:class:`_DiskStore`, under ``<state_dir>/console/tables``): a later view, or the
first view after the API server restarts, reads only the files that arrived since. Only the
columns a page asks for are decoded, and bronze ``events`` are kept per hour folder, so the live
hours moving on reuse what was read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
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
import pyarrow.parquet as pq

from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.storage.fs import local_path

log = logging.getLogger(__name__)

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


#: The column that tells which file (an index into the folder's file list) a cached row came from.
FILE_INDEX = "__file"
#: A disk copy of a folder's rows is rewritten once this many files arrived since the last one.
PERSIST_AFTER_FILES = 100
#: The disk copies kept (least recently used dropped beyond).
DISK_BUDGET_BYTES = 2 * 1024**3
_LISTING_KEY = b"logstream.console.files"
_CACHE_KEY = b"logstream.console.key"


_Files = tuple[tuple[str, int, int], ...]  # (path, mtime ns, size)
_Walked = tuple[tuple[str, int], ...]  # (folder, mtime ns)


@dataclass(frozen=True)
class _Read:
    files: _Files  # in the order read
    table: pa.Table  # the rows of every file, with FILE_INDEX
    persisted: int = 0  # how many of ``files`` the disk copy holds


class _DiskStore:
    """Each folder's rows as read (:class:`_Read`), one Arrow IPC file per (folder, columns)
    under ``root``, so that the first view after the API server (re)starts reads one file plus
    the files the stream wrote since, not thousands of micro-batch files.

    A copy names the files it holds (path, mtime, size): :func:`_folder_rows` checks it against
    the folder like the memory cache. Writes are atomic (a temporary file, then a rename), so
    several API server workers may share the folder. Copies beyond :data:`DISK_BUDGET_BYTES`,
    least recently used first, are deleted."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: tuple) -> Path:
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]
        return self.root / f"{digest}.arrow"

    def load(self, key: tuple, schema: pa.Schema) -> tuple[_Read, _Walked] | None:
        """The copy of ``key`` and the folders walked (with their mtimes) when it was listed."""
        path = self._path(key)
        try:
            with pa.OSFile(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowException):
            return None  # none yet, or unreadable: read the folder
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: pruned last
        meta = table.schema.metadata or {}
        expected = schema.append(pa.field(FILE_INDEX, pa.int32()))
        try:
            if json.loads(meta[_CACHE_KEY]) != json.loads(json.dumps(key)):
                return None
            listing = json.loads(meta[_LISTING_KEY])
            files = tuple(
                zip(
                    map(str, listing["paths"]),
                    map(int, listing["mtimes"]),
                    map(int, listing["sizes"]),
                    strict=True,
                )
            )
            walked = tuple((str(f), int(m)) for f, m in listing["walked"])
        except (KeyError, ValueError, TypeError):
            return None
        if not table.schema.remove_metadata().equals(expected):
            return None
        return _Read(files, table.replace_schema_metadata(None), persisted=len(files)), walked

    def save(self, key: tuple, entry: _Read, walked: _Walked) -> _Read:
        """Write ``entry`` (listed when the folders had the mtimes in ``walked``)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(key)
        paths, mtimes, sizes = zip(*entry.files, strict=True) if entry.files else ((), (), ())
        listing = {"walked": walked, "paths": paths, "mtimes": mtimes, "sizes": sizes}
        table = entry.table.replace_schema_metadata(
            {_CACHE_KEY: json.dumps(key), _LISTING_KEY: json.dumps(listing)}
        )
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            with (
                pa.OSFile(str(temporary), "wb") as sink,
                pa.ipc.new_file(sink, table.schema) as writer,
            ):
                writer.write_table(table)
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            log.warning("console cache not written", extra={"path": str(path), "error": str(exc)})
            return entry
        self._prune()
        return _Read(entry.files, entry.table, persisted=len(entry.files))

    def _prune(self) -> None:
        copies = []
        for item in self.root.glob("*.arrow"):
            try:
                stat = item.stat()
            except FileNotFoundError:
                continue
            copies.append((stat.st_mtime, stat.st_size, item))
        total = sum(size for _, size, _ in copies)
        for _, size, item in sorted(copies):
            if total <= DISK_BUDGET_BYTES:
                break
            item.unlink(missing_ok=True)
            total -= size


class _DayCache:
    """What the console read of each (folder, columns), least recently used dropped beyond
    ``max_bytes``.

    The stream only adds files to a day's folders, so a later view reads just the files that
    arrived since and appends them; a file that changed or went (a republished day) makes the
    entry read again from scratch. The API server is long-lived: after the first view of a day, a
    page costs a look at its folders' mtimes (:func:`_listing`) plus the new files.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, _Read] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}

    def key_lock(self, key: tuple) -> threading.Lock:
        """One reader per key at a time: a page asking while the warm-up reads the same folder
        waits for that read instead of repeating it."""
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

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
                dropped_key, dropped = self._entries.popitem(last=False)
                self._key_locks.pop(dropped_key, None)
                total -= dropped.table.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            _LISTINGS.clear()


CACHE = _DayCache(max_bytes=512 * 1024 * 1024)
_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="console-read")


def cache_folder(settings: Settings) -> Path:
    """Where the console keeps its disk copies of what it read (private, like the state)."""
    return Path(settings.state_dir) / "console" / "tables"


#: folder -> (each folder walked with its mtime ns, its files): a listing reused while no
#: folder in it changed.
_LISTINGS: dict[str, tuple[_Walked, _Files]] = {}


def _unchanged(folders: _Walked) -> bool:
    try:
        return bool(folders) and all(os.stat(f).st_mtime_ns == m for f, m in folders)
    except FileNotFoundError:
        return False


def _listing(folder: Path) -> tuple[_Walked, _Files]:
    """The folders walked under ``folder`` (with their mtimes, taken before the files were
    listed) and ``(path, mtime ns, size)`` of its Parquet files.

    Files are added, replaced and removed by renames (Spark's commit, the publisher), which
    change the mtime of the folder holding them: while no folder under ``folder`` changed, the
    last listing stands, and a view of a day with thousands of files skips a stat per file."""
    known = _LISTINGS.get(str(folder))
    if known is not None and _unchanged(known[0]):
        return known
    walked, listed = [], []
    if folder.is_dir():
        for root, dirs, _ in os.walk(folder):
            dirs[:] = [d for d in dirs if _visible(d)]
            try:
                walked.append((root, os.stat(root).st_mtime_ns))
            except FileNotFoundError:
                walked = []
                break
    for path in parquet_files([folder]):
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            continue
        listed.append((path, stat.st_mtime_ns, stat.st_size))
    result = (tuple(walked), tuple(listed))
    _LISTINGS[str(folder)] = result
    return result


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: cast to its types, nulls where absent (as a
    dataset with that schema reads a file written before a column existed)."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table[field.name]
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(len(table), field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _read_file(path: str, schema: pa.Schema) -> pa.Table:
    """``schema``'s columns of one Parquet file (only those columns are decoded)."""
    parquet = pq.ParquetFile(path)
    present = [name for name in schema.names if name in parquet.schema_arrow.names]
    return _conform(parquet.read(columns=present, use_threads=False), schema)


def _read_new(files: Sequence[tuple[str, int, int]], first: int, schema: pa.Schema) -> pa.Table:
    """The rows of ``files`` (numbered from ``first``) with :data:`FILE_INDEX`."""

    def one(item: tuple[int, tuple[str, int, int]]) -> pa.Table:
        number, (path, _, _) = item
        table = _read_file(path, schema)
        return table.append_column(FILE_INDEX, pa.repeat(pa.scalar(number, pa.int32()), len(table)))

    tables = list(_READERS.map(one, enumerate(files, start=first)))
    if not tables:
        return schema.append(pa.field(FILE_INDEX, pa.int32())).empty_table()
    return pa.concat_tables(tables).combine_chunks()


def _folder_rows(folder: Path, schema: pa.Schema, store: _DiskStore | None) -> _Read:
    """Every row of the files under ``folder``: from memory, else from the disk copy, extended
    with the files that arrived since; read from scratch when a known file changed or went."""
    key = (str(folder), tuple(schema.names))
    with CACHE.key_lock(key):
        cached = CACHE.get(key)
        if cached is None and store is not None:
            loaded = store.load(key, schema)
            if loaded is not None:
                cached, walked = loaded
                if str(folder) not in _LISTINGS and _unchanged(walked):
                    # nothing was added, replaced or removed since the copy: its listing stands
                    _LISTINGS[str(folder)] = (walked, cached.files)
        walked, files = _listing(folder)
        known = set() if cached is None else set(cached.files)
        if cached is not None and len(known) == len(files) and known.issuperset(files):
            entry = cached
        elif cached is not None and known.issubset(files):
            new = [item for item in files if item not in known]
            added = _read_new(new, len(cached.files), schema)
            entry = _Read(
                cached.files + tuple(new),
                pa.concat_tables([cached.table, added]),
                cached.persisted,
            )
        else:
            entry = _Read(files, _read_new(files, 0, schema))
        if store is not None and len(entry.files) - entry.persisted >= PERSIST_AFTER_FILES:
            entry = store.save(key, entry, walked)
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
    schema = schema_of(columns)
    store = _DiskStore(cache_folder(settings))
    for attempt in (1, 2):
        try:
            parts = [_folder_rows(folder, schema, store).table for folder in folders]
            if not parts:
                return schema.empty_table()
            rows = pa.concat_tables(parts).drop_columns([FILE_INDEX])
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
    store = _DiskStore(cache_folder(settings))
    keys = _folder_rows(day_folder(settings, table, day), schema_of([key]), store)
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
