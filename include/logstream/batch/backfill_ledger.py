"""What is already landed, and what one run did: plain Python over the backfill's commit records.

A *unit* is landed once: the events of one (file, UTC event day), or the rejected lines of one
file, where a file is its URI, size and modification time (:func:`file_key`, a digest of the
three). Each commit's ``.done`` record lists, per file of its chunk, its key, URI, size,
modification time and line count, the days (with their event counts) the commit landed, the
rejected lines it quarantined, and whether every line of the file is now landed (``complete``).
:class:`Ledger` merges the records in commit order.

Days touched
    ``days_touched`` lists the days in range that hold events of the request's files, landed by
    this run or an earlier one (from the ledger); ``days_landed`` the days that got new events
    now. Reconciling ``days_touched`` (``late_data_reconciliation`` is idempotent) also covers a
    run retried after an attempt that landed part of its files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from logstream.batch.backfill_request import BackfillRequest
from logstream.storage.fs import FileStatus


def file_key(file: FileStatus) -> str:
    """A file's identity for the ledger: a digest of its URI, size and modification time."""
    text = f"{file.uri}\n{file.size}\n{file.modified_ms}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# -- the ledger of landed units ------------------------------------------------------------------


@dataclass
class FileRecord:
    """What the committed records say about one file."""

    key: str
    uri: str
    size: int
    modified_ms: int
    lines: int
    days: dict[date, int] = field(default_factory=dict)  # event day landed -> its events
    quarantined: int | None = None  # rejected lines landed; None = not yet
    complete: bool = False  # every line is landed: the file need not be read again


class Ledger:
    """The landed units, from the ``.done`` records (applied in commit order)."""

    def __init__(self, records: Iterable[Mapping[str, Any]] = ()) -> None:
        self.files: dict[str, FileRecord] = {}
        self._key_by_uri: dict[str, str] = {}
        for record in sorted(records, key=lambda record: record["commit"]):
            self.add(record)

    def add(self, record: Mapping[str, Any]) -> None:
        for entry in record["files"]:
            current = self.files.get(entry["key"])
            if current is None:
                current = FileRecord(
                    entry["key"], entry["uri"], entry["size"], entry["modified_ms"], entry["lines"]
                )
                self.files[current.key] = current
            current.days.update({date.fromisoformat(d): n for d, n in entry["days"].items()})
            if entry.get("quarantined") is not None:
                current.quarantined = entry["quarantined"]
            current.complete = current.complete or bool(entry["complete"])
            self._key_by_uri[current.uri] = current.key

    def get(self, file: FileStatus) -> FileRecord | None:
        return self.files.get(file_key(file))

    def changed(self, file: FileStatus) -> FileRecord | None:
        """The record of a file landed from the same URI with another size or mtime, if any."""
        key = self._key_by_uri.get(file.uri)
        return self.files[key] if key is not None and key != file_key(file) else None


# -- what a run did --------------------------------------------------------------------------------


@dataclass
class BackfillSummary:
    """Counts of one run. Every line of a file that is not changed is exactly one of: an event
    landed, a line quarantined, skipped as already landed, skipped as out of range."""

    files: int = 0
    files_already_landed: int = 0  # complete before this run: not read again
    changed_files: list[str] = field(default_factory=list)  # landed before as another file
    lines: int = 0
    events_landed: int = 0
    quarantined: int = 0
    skipped_already_landed: int = 0
    skipped_out_of_range: int = 0
    days_touched: set[date] = field(default_factory=set)
    days_landed: set[date] = field(default_factory=set)
    commits: int = 0

    def add_landed_file(self, record: FileRecord, request: BackfillRequest) -> None:
        """A complete file, counted from the ledger without reading it."""
        self.files_already_landed += 1
        self.lines += record.lines
        self.skipped_already_landed += record.quarantined or 0
        for day, events in record.days.items():
            if request.in_range(day):
                self.skipped_already_landed += events
                self.days_touched.add(day)
            else:
                self.skipped_out_of_range += events

    def as_dict(self) -> dict[str, Any]:
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        touched = sorted(self.days_touched)
        values["days_touched"] = [day.isoformat() for day in touched]
        values["days_landed"] = [day.isoformat() for day in sorted(self.days_landed)]
        values["first_day"] = touched[0].isoformat() if touched else None
        values["last_day"] = touched[-1].isoformat() if touched else None
        return values
