"""The verdict of a quality run: failed expectations, per-suite results, the day's result, and
its JSON file ``<reports_dir>/quality/<day>.json`` (written by the job, read by the DAG)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from logstream.config import Settings
from logstream.errors import LogstreamError
from logstream.reports import page_safe_json
from logstream.storage.fs import Storage, join, local_path


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types (anything else becomes its ``str``)."""
    return json.loads(json.dumps(value, default=str))


@dataclass
class Failure:
    """One failed expectation: what was expected of which column, and what was found."""

    suite: str
    expectation: str  # GX expectation type, e.g. expect_column_values_to_be_between
    column: str | None
    observed: Any = None
    unexpected_count: int | None = None
    sample: list = field(default_factory=list)  # a few unexpected values or rows
    description: str = ""
    expected: str = ""  # the expectation's bounds or set, parameters filled in
    error: str | None = None  # GX could not evaluate it (e.g. a missing column)

    def line(self) -> str:
        where = f" on {self.column}" if self.column else ""
        if self.error:
            return f"{self.suite}: {self.expectation}{where} could not run: {self.error}"
        found = f"observed {self.observed}" if self.observed is not None else ""
        if self.unexpected_count:
            found = f"{self.unexpected_count} unexpected, e.g. {self.sample[:3]}"
        if self.expected:
            found = f"{found} (expected {self.expected})".lstrip()
        return f"{self.suite}: {self.expectation}{where}: {found}".rstrip(": ")


@dataclass
class SuiteResult:
    """One suite's verdict, its failed expectations and its Data Docs page."""

    suite: str
    success: bool
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    docs_page: str = ""


@dataclass
class QualityResult:
    """The verdict of one run over one day (what the job writes as JSON)."""

    day: str
    success: bool
    suites: list[SuiteResult]
    parameters: dict[str, str]
    data_docs_index: str
    run_id: str = ""
    started_at: str = ""
    duration_s: float = 0.0

    @property
    def failed_suites(self) -> list[str]:
        return [suite.suite for suite in self.suites if not suite.success]

    @property
    def failures(self) -> list[Failure]:
        return [failure for suite in self.suites for failure in suite.failures]

    def summary(self) -> str:
        passed = sum(suite.success for suite in self.suites)
        head = f"quality {self.day}: {passed}/{len(self.suites)} suites passed"
        if self.success:
            return head
        lines = [head + f"; failed: {', '.join(self.failed_suites)}"]
        lines += [f"  - {failure.line()}" for failure in self.failures]
        lines.append(f"  Data Docs: {self.data_docs_index}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityResult:
        suites = [
            SuiteResult(
                **{
                    **suite,
                    "failures": [Failure(**failure) for failure in suite.get("failures", [])],
                }
            )
            for suite in data["suites"]
        ]
        return cls(**{**data, "suites": suites})


def result_path(settings: Settings, day: date) -> Path | str:
    """Where the verdict of ``day`` is written: ``<reports_dir>/quality/<day>.json`` (a local
    Path, or the URI in a shared ``reports_dir``)."""
    local = local_path(str(settings.reports_dir))
    if local is None:
        return join(settings.reports_dir, "quality", f"{day.isoformat()}.json")
    return local / "quality" / f"{day.isoformat()}.json"


def write_result(settings: Settings, result: QualityResult) -> Path | str:
    """Write the verdict to ``<reports_dir>/quality/<day>.json`` (atomically replaced; sample
    values from the logs kept as they are, the text safe to embed in a page)."""
    path = result_path(settings, date.fromisoformat(result.day))
    Storage(settings).write_text(path, page_safe_json.dumps(result.to_dict()) + "\n")
    return path


def load_result(settings: Settings, day: date) -> QualityResult | None:
    """The verdict written for ``day``, or None when no run wrote one."""
    text = Storage(settings).read_text(result_path(settings, day))
    return None if text is None else QualityResult.from_dict(json.loads(text))


class QualityFailedError(LogstreamError):
    """A suite failed: the data is wrong, and running the check again cannot change that."""


def judge_run(
    settings: Settings, day: date, run_id: str, job_error: Exception | None = None
) -> dict[str, Any]:
    """The DAG's verdict on one run of ``jobs/quality_check.py`` (``job_error``: how the job
    failed, if it did), from the result file the job wrote for ``run_id``.

    Raises :class:`QualityFailedError` when a suite failed; re-raises ``job_error`` when the job
    broke before a verdict; raises :class:`LogstreamError` when the job passed but its verdict is
    not where this process looks. The two last are worth a retry, the first is not.
    """
    verdict = load_result(settings, day)
    mine = verdict if verdict is not None and verdict.run_id == run_id else None
    if mine is not None and not mine.success:
        raise QualityFailedError(mine.summary())
    if job_error is not None:
        raise job_error
    if mine is None:
        raise LogstreamError(
            f"the quality job passed but its result for this run is not in "
            f"{settings.reports_dir}/quality/: reports_dir must be a folder the Spark driver "
            "and this worker share (client deploy mode does that)"
        )
    suites = [suite.suite for suite in mine.suites]
    return {"date": day.isoformat(), "suites": suites, "data_docs": mine.data_docs_index}
