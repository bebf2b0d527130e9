"""The streaming queries' progress history: one JSON line per progress event, read back by hour.

``<status_dir>/history/<query>/<YYYY-MM-DD>.jsonl`` (UTC day of the progress timestamp) on a
local ``status_dir``; on a shared one (``hdfs://``, ``s3a://``), which cannot append cheaply,
``<YYYY-MM-DD>/<HH>.jsonl``, so a line rewrites at most an hour of lines. Batch duration,
watermark, Kafka lag and event-time lag over time, which the hourly latency report
(:mod:`logstream.batch.latency`) and the console summarise. Files older than ``keep_days`` are
deleted when a new day starts. Written by :class:`logstream.stream.status.StatusListener`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from logstream.config import Settings
from logstream.storage.fs import Storage, join, local_path
from logstream.timeutil import parse_iso

UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def default_storage(storage: Storage | None) -> Storage:
    """``storage``, else one built from the environment's settings (enough for a local
    ``status_dir``; a remote one needs the job's settings: pass its Storage)."""
    return storage if storage is not None else Storage(Settings.load())


#: Days of progress history kept per query (the latency report needs the last few hours).
HISTORY_DAYS = 7


def history_record(status: dict) -> dict:
    """The history line of one progress status (what :func:`summarize_progress` returned)."""
    lag_seconds = status.get("event_time_lag_seconds")
    return {
        "timestamp": status.get("progress_timestamp"),
        "query": status.get("query"),
        "run_id": status.get("run_id"),
        "batch_id": status.get("batch_id"),
        "num_input_rows": status.get("num_input_rows"),
        "batch_duration_ms": status.get("batch_duration_ms"),
        "watermark": status.get("watermark"),
        "max_event_time": status.get("max_event_time"),
        "kafka_lag": status.get("kafka_lag"),
        "event_time_lag_ms": lag_seconds * 1000.0 if lag_seconds is not None else None,
    }


def _history_folder(status_dir: str | Path, query: str) -> str:
    return join(status_dir, "history", UNSAFE_NAME.sub("_", query) or "_")


def history_path(status_dir: str | Path, query: str, day: date) -> str:
    """``<status_dir>/history/<query>/<YYYY-MM-DD>.jsonl`` (unsafe characters become ``_``): a
    local ``status_dir``'s file, appended to line by line."""
    return join(_history_folder(status_dir, query), f"{day.isoformat()}.jsonl")


def remote_history_path(status_dir: str | Path, query: str, stamp: datetime) -> str:
    """``<status_dir>/history/<query>/<YYYY-MM-DD>/<HH>.jsonl``: on HDFS or S3 there is no
    cheap append, so a line rewrites its hour's file (at most an hour of lines), not the day's."""
    hour = stamp.astimezone(UTC)
    return join(_history_folder(status_dir, query), hour.date().isoformat(), f"{hour:%H}.jsonl")


def append_history(
    status_dir: str | Path,
    record: dict,
    keep_days: int = HISTORY_DAYS,
    storage: Storage | None = None,
) -> str:
    """Append one history line to its query's file for the record's UTC day (hour, on remote
    storage: :func:`remote_history_path`).

    A new day's file prunes the query's files older than ``keep_days``, so the history stays
    bounded without a separate clean-up job.
    """
    storage = default_storage(storage)
    stamp = parse_iso(record.get("timestamp")) or datetime.now(UTC)
    day = stamp.astimezone(UTC).date()
    query = str(record.get("query") or "unnamed")
    line = json.dumps(record, default=str) + "\n"
    local = local_path(str(status_dir))
    if local is not None:
        target = history_path(status_dir, query, day)
        is_new = not Path(target).exists()
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a") as out:
            out.write(line)
    else:
        target = remote_history_path(status_dir, query, stamp)
        day_folder = join(_history_folder(status_dir, query), day.isoformat())
        is_new = not storage.list_names(day_folder)
        storage.write_text(target, (storage.read_text(target) or "") + line)
    if is_new:
        folder = _history_folder(status_dir, query)
        oldest_kept = day - timedelta(days=keep_days - 1)
        for name in storage.list_names(folder):
            try:
                if date.fromisoformat(name.removesuffix(".jsonl")) < oldest_kept:
                    storage.delete(join(folder, name))
            except ValueError:
                continue
    return target


def read_history(
    status_dir: str | Path, start: datetime, end: datetime, storage: Storage | None = None
) -> list[dict]:
    """Every query's history lines with ``start <= timestamp < end`` (aware datetimes).

    Lines that do not parse (a write cut short by a crash) are skipped, not fatal.
    """
    storage = default_storage(storage)
    root = join(status_dir, "history")
    days = []
    day = start.astimezone(UTC).date()
    while day <= (end - timedelta(microseconds=1)).astimezone(UTC).date():
        days.append(day)
        day += timedelta(days=1)
    records = []
    for query in storage.list_names(root):
        folder = join(root, query)
        for day in days:
            # a local day file, or a remote day's hour files
            texts = [storage.read_text(join(folder, f"{day.isoformat()}.jsonl"))]
            texts += [storage.read_text(path) for path in storage.list_files(
                join(folder, day.isoformat()), ".jsonl"
            )]  # fmt: skip
            for text in texts:
                for line in (text or "").splitlines():
                    try:
                        record = json.loads(line)
                        stamp = parse_iso(record.get("timestamp"))
                    except (json.JSONDecodeError, ValueError, AttributeError):
                        continue
                    if stamp is not None and start <= stamp < end:
                        records.append(record)
    return records
