"""What a backfill is asked to land, how its files are grouped, and what the DAG passes on.

Plain Python: the request (a path or glob, a parse format and service, an optional UTC day range),
the chunks its files are landed in, the ``late_data_reconciliation`` runs that cover the days it
touched, and the job's arguments and summary file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from logstream.batch.reconcile import MAX_RANGE_DAYS, parse_day
from logstream.config import Settings
from logstream.errors import ConfigError, LogstreamError
from logstream.storage.fs import FileStatus, Storage, join, local_path, parse_location
from logstream.transforms import parsing

CHUNK_FILES = 100
CHUNK_BYTES = 256 * 1024 * 1024

_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


# -- the request -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillRequest:
    """What to land: a path or glob, how to parse it, and optionally which UTC days."""

    path: str
    format: str | None = None  # None: the parse_format setting
    service: str | None = None  # service of access-log lines; None: the default_service setting
    start_date: date | None = None  # first UTC event day landed (inclusive); None: open
    end_date: date | None = None  # last UTC event day landed (inclusive); None: open

    def __post_init__(self) -> None:
        if not self.path.strip():
            raise ConfigError(
                "path is empty; give a file, folder or glob, e.g. s3a://bucket/logs/2015-*.gz"
            )
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ConfigError(
                f"end_date {self.end_date} is before start_date {self.start_date}; swap them"
            )

    @classmethod
    def from_params(
        cls,
        path: str | None,
        format: str | None = None,
        service: str | None = None,
        start_date: str | date | None = None,
        end_date: str | date | None = None,
    ) -> BackfillRequest:
        """From DAG params or CLI arguments: blank strings mean "not given"."""
        return cls(
            path=(path or "").strip(),
            format=_blank_to_none(format),
            service=_blank_to_none(service),
            start_date=day_or_none(start_date),
            end_date=day_or_none(end_date),
        )

    def in_range(self, day: date) -> bool:
        return (self.start_date is None or day >= self.start_date) and (
            self.end_date is None or day <= self.end_date
        )

    def in_range_column(self, day: Column) -> Column:
        """:meth:`in_range` as a Spark condition."""
        condition = F.lit(True)
        if self.start_date is not None:
            condition = condition & (day >= F.lit(self.start_date))
        if self.end_date is not None:
            condition = condition & (day <= F.lit(self.end_date))
        return condition

    def parse_options(self, settings: Settings) -> parsing.ParseOptions:
        """The stream's parse options with this request's format and service (ConfigError if
        the format is unknown)."""
        options = parsing.ParseOptions.from_settings(settings)
        return replace(
            options,
            format=self.format or options.format,
            default_service=self.service or options.default_service,
        )


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


def day_or_none(value: str | date | None) -> date | None:
    """A date, ``YYYY-MM-DD`` text, or None for nothing or blank text."""
    if isinstance(value, date):
        return value
    text = _blank_to_none(value)
    return parse_day(text) if text else None


# -- planning --------------------------------------------------------------------------------------


def plan_chunks(
    files: Sequence[FileStatus], max_files: int = CHUNK_FILES, max_bytes: int = CHUNK_BYTES
) -> list[list[FileStatus]]:
    """Consecutive groups of at most ``max_files`` files and ``max_bytes`` bytes (a larger file
    is a chunk of its own): each chunk is read, landed and committed as one."""
    chunks: list[list[FileStatus]] = []
    size = 0
    for file in files:
        if not chunks or len(chunks[-1]) >= max_files or size + file.size > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(file)
        size += file.size
    return chunks


def reconcile_ranges(
    days: Iterable[date | str], today: date, max_days: int = MAX_RANGE_DAYS
) -> list[tuple[date, date]]:
    """``(start_date, end_date)`` runs of ``late_data_reconciliation`` that cover ``days``.

    One range from the first to the last day when they span at most ``max_days`` (what one run
    accepts); otherwise consecutive ranges of at most ``max_days`` days, each starting at a
    touched day, so long gaps between archives are not reconciled. Days after ``today`` are left
    out: reconciliation refuses them (an archive with future timestamps has a clock problem).
    """
    ordered = sorted({day_or_none(day) for day in days} - {None})
    ranges: list[tuple[date, date]] = []
    for day in ordered:
        if day > today:
            break
        if ranges and (day - ranges[-1][0]).days < max_days:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


# -- what the DAG and the job share ----------------------------------------------------------------


def job_arguments(request: BackfillRequest, summary_file: str) -> list[str]:
    """``jobs/backfill_files.py``'s own arguments (the settings are added by
    :func:`logstream.orchestration.submit_job`)."""
    arguments = ["--path", request.path, "--summary", summary_file]
    for flag, value in (
        ("--format", request.format),
        ("--service", request.service),
        ("--start-date", request.start_date),
        ("--end-date", request.end_date),
    ):
        if value is not None:
            arguments += [flag, str(value)]
    return arguments


def summary_file(settings: Settings, run_id: str) -> Path | str:
    """Where a DAG run's job leaves its summary: ``<reports_dir>/backfill/<run id>.json`` (a
    local Path, or the URI in a shared ``reports_dir``: the Spark driver and the Airflow worker
    both reach it, whichever machines they run on)."""
    name = f"{_RUN_ID_UNSAFE.sub('_', run_id)}.json"
    folder = local_path(settings.reports_dir)
    if folder is None:
        parse_location(settings.reports_dir)  # a scheme Python cannot reach is a ConfigError
        return join(settings.reports_dir, "backfill", name)
    return folder / "backfill" / name


def discard_summary(settings: Settings, path: Path | str) -> None:
    """Delete an earlier try's summary, so that it cannot pass for this one's."""
    Storage(settings).delete(path, recursive=False)


def write_summary(settings: Settings, path: Path | str, summary: Mapping[str, Any]) -> None:
    """The job's side: leave ``summary`` at ``path`` (:func:`summary_file`), replaced whole."""
    Storage(settings).write_text(path, json.dumps(dict(summary)) + "\n")


def read_summary(path: Path | str, settings: Settings | None = None) -> dict:
    """The summary the job left at ``path`` (:func:`summary_file`); LogstreamError if none."""
    text = Storage(settings or Settings.load()).read_text(path)
    if text is None:
        raise LogstreamError(
            f"the backfill job passed but left no summary at {path}: reports_dir must be "
            "a location the Spark driver and this worker share (a shared hdfs:// or s3a:// "
            "reports_dir, or a local one in client deploy mode)"
        )
    return json.loads(text)


def reconciliation_runs(summary: Mapping[str, Any], today: date) -> list[dict[str, str]]:
    """The ``late_data_reconciliation`` confs that cover the days a backfill touched
    (:func:`reconcile_ranges`), marked as coming from a backfill."""
    return [
        {"start_date": lo.isoformat(), "end_date": hi.isoformat(), "origin": "backfill"}
        for lo, hi in reconcile_ranges(summary["days_touched"], today=today)
    ]
