"""Where a table's day is and how the console reads it: pyarrow over one day's partition folders,
only the columns asked for, never Spark.

Every table is partitioned by a date column (``event_date``, ``quarantine_date``, ``window_date``,
``report_date``); bronze events also by ``event_hour``. The console lists exactly the folders of
the day (and hours) it shows, so a page costs the same on the first day and after a year. Folders
and files whose names start with ``_`` or ``.`` (staging, commit markers, temporary files) are
skipped, as Spark's readers skip them.

``data_root`` is a local folder (a :class:`~pathlib.Path` here) or shared storage (``hdfs://``,
``s3a://``: a URI string, read through :class:`~logstream.storage.fs.Storage`). The two differ in
one place, :func:`_listing`: a local folder is walked with ``os`` calls and its listing reused
while no folder's mtime changed; shared storage is listed in one recursive call per view (object
stores have no folder mtimes), each file's size and modification time telling what is new.

The stream writes a file per micro-batch, so a busy day has thousands of small files per table,
and opening them is what a first view costs (each file's footer and pages, under a millisecond
each, adds up to seconds). What was read of each folder is kept in memory (:class:`DayCache`)
and on disk (:class:`DiskStore`, under ``<state_dir>/console/tables``): a later view, or the
first view after the API server restarts, reads only the files that arrived since. Only the
columns a page asks for are decoded, and bronze ``events`` are kept per hour folder, so the live
hours moving on reuse what was read.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError

from logstream.config import Settings
from logstream.console.cache import (
    CACHE,
    FILE_INDEX,
    LISTINGS,
    PERSIST_AFTER_FILES,
    READERS,
    DiskStore,
    Files,
    FolderRead,
    Walked,
    cache_folder,
)
from logstream.storage.fs import Storage, join, local_path, parse_location

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


#: A folder of tables: a local path, or a location on shared storage (``hdfs://``, ``s3a://``).
Folder = Path | str

#: What reading the tables or reports can raise when storage is unreachable or refuses: OS
#: errors (the local disk, WebHDFS, S3 answers), and the S3 client's own (no credentials, no
#: connection to the endpoint).
STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, BotoCoreError)

#: Storage for each settings object in use (the API server has one): its clients are reused.
_STORAGES: OrderedDict[int, tuple[Settings, Storage]] = OrderedDict()
_STORAGES_LOCK = threading.Lock()


def shared_storage(settings: Settings) -> Storage:
    """One :class:`Storage` per settings object, so that a view reuses its S3 and WebHDFS
    clients (and their connections) instead of opening new ones."""
    with _STORAGES_LOCK:
        known = _STORAGES.get(id(settings))
        if known is None or known[0] is not settings:
            known = (settings, Storage(settings))
            _STORAGES[id(settings)] = known
            while len(_STORAGES) > 8:
                _STORAGES.popitem(last=False)
        _STORAGES.move_to_end(id(settings))
        return known[1]


def data_folder(settings: Settings) -> Folder:
    """``data_root``: its local folder, or its URI on shared storage (``hdfs://``, ``s3a://``;
    any other scheme is a ConfigError that says which ones work)."""
    folder = local_path(settings.data_root)
    if folder is not None:
        return folder
    parse_location(settings.data_root)
    return settings.data_root.rstrip("/")


def _child(folder: Folder, *names: str) -> Folder:
    return folder.joinpath(*names) if isinstance(folder, Path) else join(folder, *names)


def table_folder(settings: Settings, table: str) -> Folder:
    """``<data_root>/<table>``."""
    return _child(data_folder(settings), table)


def day_folder(settings: Settings, table: str, day: date) -> Folder:
    """``<data_root>/<table>/<date column>=<day>``."""
    column = DATE_PARTITION.get(table, "window_date")
    return _child(table_folder(settings, table), f"{column}={day.isoformat()}")


def child_names(settings: Settings, folder: Folder) -> list[str]:
    """The names in ``folder`` (partition folders, files); empty when it does not exist."""
    if isinstance(folder, str):
        return shared_storage(settings).list_names(folder)
    try:
        return sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []


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


#: A file on shared storage up to this size is fetched in one request, then decoded; a larger
#: one is read by ranges (only the columns asked for).
WHOLE_FILE_BYTES = 16 * 1024**2


def _unchanged(folders: Walked) -> bool:
    try:
        return bool(folders) and all(os.stat(f).st_mtime_ns == m for f, m in folders)
    except FileNotFoundError:
        return False


def _listing(folder: Folder, storage: Storage | None) -> tuple[Walked, Files]:
    """The folders walked under ``folder`` (with their mtimes, taken before the files were
    listed) and ``(path, mtime ns, size)`` of its Parquet files.

    Local: files are added, replaced and removed by renames (Spark's commit, the publisher),
    which change the mtime of the folder holding them: while no folder under ``folder``
    changed, the last listing stands, and a view of a day with thousands of files skips a stat
    per file. Shared storage (``storage``): one recursive listing, no folders to check later."""
    if isinstance(folder, str):
        assert storage is not None, "a folder on shared storage is read through a Storage"
        return (), _shared_listing(folder, storage)
    known = LISTINGS.get(str(folder))
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
    LISTINGS[str(folder)] = result
    return result


def _shared_listing(folder: str, storage: Storage) -> Files:
    """``(location, mtime ns, size)`` of the visible Parquet files under ``folder`` on shared
    storage. A file is known by its name, size and modification time (S3 keeps it to the
    second): the stream and the publisher write new names, never new content under an old one
    within a second."""
    prefix = folder.rstrip("/") + "/"
    listed = []
    for entry in storage.walk(folder):
        relative = entry.location.removeprefix(prefix)
        if (
            entry.location.startswith(prefix)
            and relative.endswith(".parquet")
            and all(_visible(part) for part in relative.split("/"))
        ):
            listed.append((entry.location, int(entry.modified * 1_000_000_000), entry.size))
    return tuple(listed)


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


def _read_file(path: str, schema: pa.Schema, storage: Storage | None, size: int) -> pa.Table:
    """``schema``'s columns of one Parquet file (only those columns are decoded): a local path,
    or a location read through ``storage`` (small files in one request)."""
    if storage is None:
        source = path
    elif size <= WHOLE_FILE_BYTES:
        data = storage.read_bytes(path)
        if data is None:
            raise FileNotFoundError(path)
        source = pa.BufferReader(data)
    else:
        filesystem, fs_path = storage.arrow_filesystem(path)
        source = filesystem.open_input_file(fs_path)
    parquet = pq.ParquetFile(source)
    present = [name for name in schema.names if name in parquet.schema_arrow.names]
    return _conform(parquet.read(columns=present, use_threads=False), schema)


def _read_new(
    files: Sequence[tuple[str, int, int]],
    first: int,
    schema: pa.Schema,
    storage: Storage | None,
) -> pa.Table:
    """The rows of ``files`` (numbered from ``first``) with :data:`FILE_INDEX`."""

    def one(item: tuple[int, tuple[str, int, int]]) -> pa.Table:
        number, (path, _, size) = item
        table = _read_file(path, schema, storage, size)
        return table.append_column(FILE_INDEX, pa.repeat(pa.scalar(number, pa.int32()), len(table)))

    tables = list(READERS.map(one, enumerate(files, start=first)))
    if not tables:
        return schema.append(pa.field(FILE_INDEX, pa.int32())).empty_table()
    return pa.concat_tables(tables).combine_chunks()


def _folder_rows(
    folder: Folder, schema: pa.Schema, store: DiskStore | None, storage: Storage | None
) -> FolderRead:
    """Every row of the files under ``folder`` (``storage`` reads it when it is not local):
    from memory, else from the disk copy, extended with the files that arrived since; read from
    scratch when a known file changed or went."""
    key = (str(folder), tuple(schema.names))
    with CACHE.key_lock(key):
        cached = CACHE.get(key)
        if cached is None and store is not None:
            loaded = store.load(key, schema)
            if loaded is not None:
                cached, walked = loaded
                if str(folder) not in LISTINGS and _unchanged(walked):
                    # nothing was added, replaced or removed since the copy: its listing stands
                    LISTINGS[str(folder)] = (walked, cached.files)
        walked, files = _listing(folder, storage)
        known = set() if cached is None else set(cached.files)
        if cached is not None and len(known) == len(files) and known.issuperset(files):
            entry = cached
        elif cached is not None and known.issubset(files):
            new = [item for item in files if item not in known]
            added = _read_new(new, len(cached.files), schema, storage)
            entry = FolderRead(
                cached.files + tuple(new),
                pa.concat_tables([cached.table, added]),
                cached.persisted,
            )
        else:
            entry = FolderRead(files, _read_new(files, 0, schema, storage))
        if store is not None and len(entry.files) - entry.persisted >= PERSIST_AFTER_FILES:
            entry = store.save(key, entry, walked)
        CACHE.put(key, entry)
        return entry


def _folders(
    settings: Settings, table: str, day: date, hours: Iterable[int] | None
) -> list[Folder]:
    folder = day_folder(settings, table, day)
    return (
        [folder]
        if hours is None
        else [_child(folder, f"event_hour={h}") for h in sorted(set(hours))]
    )


def _storage(settings: Settings) -> Storage | None:
    """The Storage that reads ``data_root``; None when it is a local folder (read with ``os``
    and pyarrow's own local file system)."""
    return None if isinstance(data_folder(settings), Path) else shared_storage(settings)


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
    store = DiskStore(cache_folder(settings))
    storage = _storage(settings)
    for attempt in (1, 2):
        try:
            parts = [_folder_rows(folder, schema, store, storage).table for folder in folders]
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
    store = DiskStore(cache_folder(settings))
    storage = _storage(settings)
    keys = _folder_rows(day_folder(settings, table, day), schema_of([key]), store, storage)
    schema = schema_of(list(dict.fromkeys([*columns, key])))
    samples = {}
    for value in values:
        match = pc.field(key).is_null() if value is None else pc.field(key) == value
        numbers = pc.unique(keys.table.filter(match)[FILE_INDEX]).to_pylist()
        found: list[pa.Table] = []
        rows = 0
        for number in sorted(numbers):
            path, filesystem = keys.files[number][0], None
            if storage is not None:
                filesystem, path = storage.arrow_filesystem(path)
            try:
                piece = ds.dataset(
                    path, filesystem=filesystem, format="parquet", schema=schema
                ).to_table(filter=match, columns=list(columns))
            except FileNotFoundError:
                continue
            found.append(piece.slice(0, limit - rows))
            rows += len(found[-1])
            if rows >= limit:
                break
        samples[value] = pa.concat_tables(found) if found else schema_of(columns).empty_table()
    return samples
