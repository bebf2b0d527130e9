"""The streaming job's driver log (``<state_dir>/supervisor/stream.log``): its last error, read
for health reports and pages, and its rotation before a start.

Every run of the job appends to the one log; a run's output starts at the offset recorded in its
pid file, so an excerpt never shows an earlier run's error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

LOG_ROTATE_BYTES = 50 * 1024 * 1024
EXCERPT_LINES = 40
EXCERPT_BYTES = 2048

_ERROR_LINE = re.compile(r"Exception|Error|Traceback|stream_logs: ")
_STACK_FRAME = re.compile(r"^\s+(at |\.\.\. \d+ more)")


def error_excerpt(
    log_path: str | Path,
    offset: int = 0,
    max_lines: int = EXCERPT_LINES,
    max_bytes: int = EXCERPT_BYTES,
) -> str:
    """The last error of the driver log from ``offset`` on: up to ``max_lines`` lines around the
    last line naming an exception or error (Java stack frames left out), at most ``max_bytes``.
    Without such a line, the log's last lines."""
    path = Path(log_path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            handle.seek(max(offset, size - 512 * 1024, 0))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [
        line.rstrip()[:300]
        for line in text.splitlines()
        if line.strip() and not _STACK_FRAME.match(line)
    ]
    if not lines:
        return ""
    anchors = [index for index, line in enumerate(lines) if _ERROR_LINE.search(line)]
    anchor = anchors[-1] if anchors else len(lines) - 1
    picked = [lines[anchor]]
    budget = max_bytes - len(picked[0].encode()) - 1
    after = lines[anchor + 1 : anchor + 1 + max_lines // 4]
    before = lines[max(0, anchor - max_lines) : anchor]
    for line in after:
        cost = len(line.encode()) + 1
        if len(picked) >= max_lines or cost > budget:
            break
        picked.append(line)
        budget -= cost
    for line in reversed(before):
        cost = len(line.encode()) + 1
        if len(picked) >= max_lines or cost > budget:
            break
        picked.insert(0, line)
        budget -= cost
    return "\n".join(picked)


def rotate_log(path: Path) -> None:
    """Move a log over :data:`LOG_ROTATE_BYTES` aside to ``<name>.1`` (replacing the older one)."""
    if path.exists() and path.stat().st_size > LOG_ROTATE_BYTES:
        os.replace(path, path.with_name(path.name + ".1"))
