"""The reports of a day for the console: the reconciliation change report, the latency report and
the quality verdict with its Data Docs pages, and the report files the console may serve.

Report files live under ``reports_dir`` (``reconciliation/``, ``latency/``, ``quality/``,
``data_docs/``): a folder on the API server's machine, or shared storage (``hdfs://``, ``s3a://``,
read through :class:`~logstream.storage.fs.Storage`). The console serves them itself (behind the
same authentication), since a browser opens neither ``file://`` links from a web page nor the
storage's own URIs.
"""

from __future__ import annotations

import json
from datetime import UTC, date
from pathlib import Path, PurePosixPath

from logstream.batch.quality.result import load_result
from logstream.config import Settings
from logstream.console.tables import read_day, shared_storage
from logstream.errors import ConfigError
from logstream.storage.fs import join, local_path, parse_location

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


def reports_root(settings: Settings) -> Path | str:
    """``reports_dir``: the local folder, resolved, or the URI of a shared one (``hdfs://``,
    ``s3a://``; any other scheme is a ConfigError that says which ones work)."""
    folder = local_path(settings.reports_dir)
    if folder is None:
        parse_location(settings.reports_dir)
        return settings.reports_dir.rstrip("/")
    return folder.expanduser().resolve()


def _under(root: Path | str, *names: str) -> Path | str:
    return root.joinpath(*names) if isinstance(root, Path) else join(root, *names)


def media_type(target: Path | str) -> str:
    """The content type a served file (:func:`served_file`) is sent with."""
    return SERVED_TYPES[PurePosixPath(str(target)).suffix]


def served_file(settings: Settings, relative: str) -> Path | str | None:
    """The file ``<reports_dir>/<relative>`` if the console may serve it: inside one of
    :data:`SERVED_FOLDERS`, of a type in :data:`SERVED_TYPES`, existing; None otherwise. A local
    Path, or the location of a file on shared storage."""
    root = reports_root(settings)
    if "\x00" in relative:
        return None
    if isinstance(root, str):
        return _served_shared(settings, root, relative)
    target = (root / relative).resolve()
    allowed = [root / folder for folder in SERVED_FOLDERS]
    if not any(target.is_relative_to(folder) for folder in allowed):
        return None
    if target.suffix not in SERVED_TYPES or not target.is_file():
        return None
    return target


def _served_shared(settings: Settings, root: str, relative: str) -> str | None:
    """:func:`served_file` on shared storage: no symlinks there, so a path with no empty, ``.``
    or ``..`` part, under a served folder, stays inside it."""
    parts = relative.split("/")
    if len(parts) < 2 or parts[0] not in SERVED_FOLDERS or "\\" in relative:
        return None
    if any(part in ("", ".", "..") for part in parts):
        return None
    if PurePosixPath(relative).suffix not in SERVED_TYPES:
        return None
    location = join(root, relative)
    return location if shared_storage(settings).is_file(location) else None


def _relative_to_shared(root: str, location: str) -> str | None:
    """``location``'s path under the shared ``root`` (``s3://`` and ``s3a://``, ``webhdfs://``
    and ``hdfs://`` spell the same place); None when it is elsewhere."""
    try:
        base, where = parse_location(root), parse_location(location)
    except ConfigError:
        return None
    if (base.scheme, base.authority) != (where.scheme, where.authority):
        return None
    prefix = base.path.rstrip("/") + "/"
    return where.path.removeprefix(prefix) if where.path.startswith(prefix) else None


def console_link(settings: Settings, location: str | None) -> str | None:
    """A report file's path, ``file://`` URL or shared-storage URI as a link relative to the
    console's root (``files/<path under reports_dir>``); None when the console does not serve
    it."""
    if not location:
        return None
    root = reports_root(settings)
    if isinstance(root, str):
        relative = _relative_to_shared(root, location)
        if relative is None or served_file(settings, relative) is None:
            return None
        return f"files/{relative}"
    path = local_path(location)
    if path is None:
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
    path = _under(reports_root(settings), "reconciliation", f"{day.isoformat()}.json")
    text = shared_storage(settings).read_text(path)
    summary = None if text is None else json.loads(text)
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
        "report_file": None if summary is None else console_link(settings, str(path)),
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
    folder = _under(reports_root(settings), "latency")
    pages = []
    for name in sorted(shared_storage(settings).list_names(folder), reverse=True):
        if name.startswith(f"{day.isoformat()}T") and name.endswith(".html"):
            link = console_link(settings, str(_under(folder, name)))
            pages.append({"hour": name.removesuffix(".html"), "link": link})
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
