"""What the console keeps of what it read: each folder's rows in memory (:class:`DayCache`) and
on disk (:class:`DiskStore`, one Arrow IPC file per folder and column set under
``<state_dir>/console/tables``), so a later view, or the first view after the API server
restarts, reads only the files that arrived since. :mod:`logstream.console.tables` decides what
to read; this module only keeps it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from logstream.config import Settings

log = logging.getLogger(__name__)

#: The column that tells which file (an index into the folder's file list) a cached row came from.
FILE_INDEX = "__file"
#: A disk copy of a folder's rows is rewritten once this many files arrived since the last one.
PERSIST_AFTER_FILES = 100
#: The disk copies kept (least recently used dropped beyond).
DISK_BUDGET_BYTES = 2 * 1024**3
_LISTING_KEY = b"logstream.console.files"
_CACHE_KEY = b"logstream.console.key"


Files = tuple[tuple[str, int, int], ...]  # (path, mtime ns, size)
Walked = tuple[tuple[str, int], ...]  # (folder, mtime ns)


@dataclass(frozen=True)
class FolderRead:
    files: Files  # in the order read
    table: pa.Table  # the rows of every file, with FILE_INDEX
    persisted: int = 0  # how many of ``files`` the disk copy holds


class DiskStore:
    """Each folder's rows as read (:class:`FolderRead`), one Arrow IPC file per (folder, columns)
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

    def load(self, key: tuple, schema: pa.Schema) -> tuple[FolderRead, Walked] | None:
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
        return FolderRead(files, table.replace_schema_metadata(None), persisted=len(files)), walked

    def save(self, key: tuple, entry: FolderRead, walked: Walked) -> FolderRead:
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
        return FolderRead(entry.files, entry.table, persisted=len(entry.files))

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


class DayCache:
    """What the console read of each (folder, columns), least recently used dropped beyond
    ``max_bytes``.

    The stream only adds files to a day's folders, so a later view reads just the files that
    arrived since and appends them; a file that changed or went (a republished day) makes the
    entry read again from scratch. The API server is long-lived: after the first view of a day, a
    page costs a look at its folders' mtimes (:func:`_listing`) plus the new files.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, FolderRead] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}

    def key_lock(self, key: tuple) -> threading.Lock:
        """One reader per key at a time: a page asking while the warm-up reads the same folder
        waits for that read instead of repeating it."""
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def get(self, key: tuple) -> FolderRead | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple, entry: FolderRead) -> None:
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
            LISTINGS.clear()


CACHE = DayCache(max_bytes=512 * 1024 * 1024)
READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="console-read")


def cache_folder(settings: Settings) -> Path:
    """Where the console keeps its disk copies of what it read (private, like the state)."""
    return Path(settings.state_dir) / "console" / "tables"


#: folder -> (each folder walked with its mtime ns, its files): a listing reused while no
#: folder in it changed.
LISTINGS: dict[str, tuple[Walked, Files]] = {}
