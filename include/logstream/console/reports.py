"""The reports of a day for the console: the reconciliation change report, the latency report and
the quality verdict with its Data Docs pages, and the report files the console may serve.

Report files live on the API server's machine under ``reports_dir`` (``reconciliation/``,
``latency/``, ``quality/``, ``data_docs/``); the console serves the HTML ones itself (behind the
same authentication), since a browser does not open ``file://`` links from a web page.
"""

from __future__ import annotations

import json
from datetime import UTC, date
from pathlib import Path

from logstream.batch.quality.result import load_result
from logstream.config import Settings
from logstream.console.tables import read_day
from logstream.storage.fs import local_path

#: Changed windows listed per page (the JSON report and the table hold all of them).
MAX_CHANGES = 500
#: The folders of ``reports_dir`` the console serves files from, and the file types it serves.
SERVED_FOLDERS = ("latency", "data_docs", "reconciliation", "quality")
SERVED_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css",
    ".png": "image/png",
}

_CHANGE_COLUMNS = (
    "family",
    "change",
    "window_start",
    "window_end",
    "entity",
    "count_column",
    "streamed_count",
    "reconciled_count",
    "changed_columns",
)
_LATENCY_COLUMNS = (
    "report_hour",
    "scope",
    "service",
    "stage",
    "unit",
    "count",
    "p50",
    "p95",
    "p99",
    "max",
    "avg",
    "alert_level",
)


def reports_folder(settings: Settings) -> Path | None:
    """The local ``reports_dir``, resolved; None when it is not a local folder."""
    folder = local_path(settings.reports_dir)
    return None if folder is None else folder.expanduser().resolve()


def served_file(settings: Settings, relative: str) -> Path | None:
    """The file ``<reports_dir>/<relative>`` if the console may serve it: inside one of
    :data:`SERVED_FOLDERS`, of a type in :data:`SERVED_TYPES`, existing; None otherwise."""
    root = reports_folder(settings)
    if root is None or "\x00" in relative:
        return None
    target = (root / relative).resolve()
    allowed = [root / folder for folder in SERVED_FOLDERS]
    if not any(target.is_relative_to(folder) for folder in allowed):
        return None
    if target.suffix not in SERVED_TYPES or not target.is_file():
        return None
    return target


def console_link(settings: Settings, location: str | None) -> str | None:
    """A report file's path or ``file://`` URL as a link relative to the console's root
    (``files/<path under reports_dir>``); None when the console does not serve it."""
    if not location:
        return None
    path = local_path(location)
    root = reports_folder(settings)
    if path is None or root is None:
        return None
    resolved = path.expanduser().resolve()
    if (
        not resolved.is_relative_to(root)
        or served_file(settings, str(resolved.relative_to(root))) is None
    ):
        return None
    return f"files/{resolved.relative_to(root).as_posix()}"


def reconciliation(settings: Settings, day: date) -> dict:
    """The day's change report: the JSON summary, and the changed windows from the table."""
    root = reports_folder(settings)
    summary = None
    path = None if root is None else root / "reconciliation" / f"{day.isoformat()}.json"
    if path is not None and path.is_file():
        summary = json.loads(path.read_text())
    changes = read_day(settings, "reconciliation_report", day, _CHANGE_COLUMNS)
    counts = changes.group_by(["family", "change"]).aggregate([([], "count_all")]).to_pylist()
    changes = changes.sort_by([("family", "ascending"), ("window_start", "ascending")])
    listed = [
        {
            **row,
            "window_start": row["window_start"].astimezone(UTC).isoformat(),
            "window_end": row["window_end"].astimezone(UTC).isoformat(),
        }
        for row in changes.slice(0, MAX_CHANGES).to_pylist()
    ]
    return {
        "day": day.isoformat(),
        "summary": None if summary is None else summary.get("summary"),
        "totals": None if summary is None else summary.get("totals"),
        "late": None if summary is None else summary.get("late"),
        "report_file": None if path is None else console_link(settings, str(path)),
        "changed_windows": len(changes),
        "by_family": sorted(
            (
                {"family": c["family"], "change": c["change"], "windows": c["count_all"]}
                for c in counts
            ),
            key=lambda c: (str(c["family"]), str(c["change"])),
        ),
        "changes": listed,
    }


def latency(settings: Settings, day: date) -> dict:
    """The day's latency report rows (newest hour first) and its hourly HTML pages."""
    table = read_day(settings, "latency_report", day, _LATENCY_COLUMNS)
    table = table.sort_by(
        [("report_hour", "descending"), ("scope", "ascending"), ("service", "ascending")]
    )
    rows = [
        {**row, "report_hour": row["report_hour"].astimezone(UTC).isoformat()}
        for row in table.to_pylist()
    ]
    root = reports_folder(settings)
    pages = []
    folder = None if root is None else root / "latency"
    if folder is not None and folder.is_dir():
        for page in sorted(folder.glob(f"{day.isoformat()}T*.html"), reverse=True):
            pages.append({"hour": page.stem, "link": console_link(settings, str(page))})
    return {"day": day.isoformat(), "rows": rows, "pages": pages}


def quality(settings: Settings, day: date) -> dict:
    """The day's quality verdict, with console links to its Data Docs pages."""
    result = load_result(settings, day)
    if result is None:
        return {"day": day.isoformat(), "result": None}
    data = result.to_dict()
    data["data_docs_link"] = console_link(settings, data.get("data_docs_index"))
    for suite in data["suites"]:
        suite["docs_link"] = console_link(settings, suite.get("docs_page"))
    return {"day": day.isoformat(), "result": data}
