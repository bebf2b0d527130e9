"""The gate before a (re)start: is every query checkpoint one Spark can resume from, for this
configuration?

Checkpoints are read the way Spark reads them (a ``metadata`` JSON line; ``offsets/<n>`` and
``commits/<n>`` as a ``v<N>`` line and one JSON value per line; the job's own
``logstream_state/*.json``), from a local folder or any URI pyarrow opens. A checkpoint Spark would
fail on, or would silently start over from (missing metadata, unreadable logs, another Kafka
topic), is refused with a :class:`CheckpointError` that names the file, the problem and the fix.
Nothing here deletes, moves or rewrites a checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime

from logstream.config import Settings
from logstream.errors import LogstreamError

_LOG_VERSION = re.compile(r"^v(\d+)$")


class CheckpointError(LogstreamError):
    """A checkpoint the job would resume from is corrupt or belongs to another configuration."""

    def __init__(self, message: str, *, query: str, path: str, file: str, problem: str) -> None:
        super().__init__(message)
        self.query = query
        self.path = path
        self.file = file
        self.problem = problem


@dataclass(frozen=True)
class CheckpointReport:
    """One query's checkpoint as the supervisor read it."""

    query: str
    path: str
    query_id: str | None
    latest_batch: int | None
    committed_batch: int | None
    # Kafka offsets of the latest committed batch ({topic: {partition: offset}}); ingestion only
    committed_offsets: dict[str, dict[str, int]] | None = None


class CheckpointStorage:
    """Read-only access to a checkpoint root: a local folder, or with ``settings`` any location
    :class:`logstream.storage.fs.Storage` reads (``hdfs://`` through WebHDFS, ``s3a://`` with the
    configured endpoint and credentials), else a URI pyarrow can open. Paths keep the root's
    spelling (``s3a://bucket/...``), so messages name what an operator types."""

    _SCHEMES = {"s3a": "s3", "s3n": "s3", "abfss": "abfs", "gcs": "gs"}

    def __init__(self, root: str, settings: Settings | None = None) -> None:
        from pyarrow import fs as pafs

        self._pafs = pafs
        self._storage = None
        if "://" not in root or root.startswith("file://"):
            self.fs = pafs.LocalFileSystem()
            self.root = os.path.abspath(root.removeprefix("file://"))
        elif settings is not None and root.split("://", 1)[0] in {"hdfs", "s3a", "s3", "s3n"}:
            from logstream.storage.fs import Storage

            self._storage = Storage(settings)
            self.root = root
        else:
            scheme, rest = root.split("://", 1)
            uri = f"{self._SCHEMES.get(scheme, scheme)}://{rest}"
            self.fs, self.root = pafs.FileSystem.from_uri(uri)

    def children(self, path: str) -> list[tuple[str, bool]]:
        """(name, is_dir) of the direct children; dot-files (Hadoop .crc, temp files) left out."""
        if self._storage is not None:
            fs, where = self._storage.filesystem(path)
            try:
                entries = fs.ls(where, detail=True)
            except FileNotFoundError:
                return []
            named = ((e["name"].rstrip("/").rsplit("/", 1)[-1], e["type"]) for e in entries)
            return sorted(
                (name, kind == "directory") for name, kind in named if not name.startswith(".")
            )
        selector = self._pafs.FileSelector(path, allow_not_found=True)
        return sorted(
            (info.base_name, info.type == self._pafs.FileType.Directory)
            for info in self.fs.get_file_info(selector)
            if not info.base_name.startswith(".")
        )

    def exists(self, path: str) -> bool:
        if self._storage is not None:
            return self._storage.exists(path)
        return self.fs.get_file_info(path).type != self._pafs.FileType.NotFound

    def read(self, path: str) -> bytes:
        if self._storage is not None:
            data = self._storage.read_bytes(path)
            if data is None:
                raise FileNotFoundError(path)
            return data
        with self.fs.open_input_stream(path) as stream:
            return stream.read()


def expected_topic(settings: Settings, query: str) -> str | None:
    """The Kafka topic an ingestion query's checkpoint must belong to."""
    return {
        "ingest_logs": settings.logs_topic,
        "ingest_user_events": settings.user_events_topic,
    }.get(query)


def _remedy(path: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = f"{path}.broken-{stamp}"
    move = f"mv {shlex.quote(path)} {shlex.quote(target)}"
    if "://" in path and not path.startswith("file://"):
        move = f"hadoop fs -mv {path} {target}"
    return (
        "The supervisor does not start the job on it and never resets it. Restore the folder "
        "from a backup, or, to start this query from scratch on purpose (it re-reads Kafka from "
        "`starting_offsets`, so rows landed before may land again), move it aside with "
        f"`{move}` and trigger log_stream_supervisor with action=start."
    )


def _bad(query: str, path: str, file: str, problem: str, kind: str) -> CheckpointError:
    message = f"checkpoint of query {query} is {kind}: {path}/{file}: {problem}. {_remedy(path)}"
    return CheckpointError(message, query=query, path=path, file=file, problem=problem)


def _parse_log_file(
    raw: bytes, *, query: str, path: str, file: str, min_lines: int
) -> list[str | dict | None]:
    """Spark's metadata-log format: ``v<N>``, then one JSON value (or ``-``) per line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(query, path, file, "not UTF-8 text", "corrupt") from None
    lines = text.split("\n")
    if not lines or not _LOG_VERSION.match(lines[0].lstrip("\x00").strip()):
        raise _bad(
            query,
            path,
            file,
            f"first line is {lines[0][:40]!r} instead of a log version such as 'v1'",
            "corrupt",
        )
    values: list[str | dict | None] = [lines[0].strip()]
    for number, line in enumerate(lines[1:], start=2):
        if line == "-":
            values.append(None)
            continue
        if not line and number == len(lines):
            continue  # trailing newline
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError:
            raise _bad(
                query, path, file, f"line {number} is not JSON ({line[:60]!r})", "corrupt"
            ) from None
    if len(values) < min_lines:
        raise _bad(query, path, file, f"{len(values)} line(s), expected {min_lines}+", "corrupt")
    return values


def _numbered(storage: CheckpointStorage, folder: str) -> list[int]:
    return sorted(int(name) for name, is_dir in storage.children(folder) if name.isdigit())


def validate_checkpoint(
    storage: CheckpointStorage, path: str, query: str, topic: str | None
) -> CheckpointReport:
    """Read one query's checkpoint the way Spark will; raise :class:`CheckpointError` if Spark
    would fail on it or silently start over (missing metadata, unreadable logs, other topic)."""
    children = dict(storage.children(path))
    logs_present = any(name in children for name in ("offsets", "commits", "sources", "state"))
    if "metadata" not in children:
        if logs_present:
            raise _bad(
                query,
                path,
                "metadata",
                "missing while offsets/commits exist (Spark would start the query under a new "
                "id from `starting_offsets`)",
                "corrupt",
            )
        return CheckpointReport(query, path, None, None, None)
    try:
        metadata = json.loads(storage.read(f"{path}/metadata").decode("utf-8").split("\n")[0])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad(query, path, "metadata", "not a JSON object", "corrupt") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("id"), str):
        raise _bad(query, path, "metadata", "has no query id", "corrupt")

    offsets: dict[int, list] = {}
    for batch in _numbered(storage, f"{path}/offsets"):
        file = f"offsets/{batch}"
        offsets[batch] = _parse_log_file(
            storage.read(f"{path}/{file}"), query=query, path=path, file=file, min_lines=3
        )
    commits = _numbered(storage, f"{path}/commits")
    for batch in commits:
        file = f"commits/{batch}"
        _parse_log_file(
            storage.read(f"{path}/{file}"), query=query, path=path, file=file, min_lines=2
        )
    state_folder = f"{path}/logstream_state"
    for name, _ in storage.children(state_folder):
        try:
            json.loads(storage.read(f"{state_folder}/{name}"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _bad(
                query, path, f"logstream_state/{name}", "not valid JSON", "corrupt"
            ) from None

    latest = max(offsets) if offsets else None
    committed = max((b for b in commits if b in offsets), default=None)
    committed_offsets = None
    if topic is not None and latest is not None:
        source = offsets[latest][2]
        if not isinstance(source, dict) or not all(isinstance(v, dict) for v in source.values()):
            raise _bad(
                query,
                path,
                f"offsets/{latest}",
                f"the source offsets {str(source)[:80]!r} are not Kafka offsets",
                "incompatible",
            )
        if set(source) != {topic}:
            raise _bad(
                query,
                path,
                f"offsets/{latest}",
                f"written for topic(s) {sorted(source)}, but the job is configured for "
                f"{topic!r} (logs_topic / user_events_topic changed?)",
                "incompatible",
            )
        if committed is not None:
            committed_offsets = offsets[committed][2]
    return CheckpointReport(query, path, metadata["id"], latest, committed, committed_offsets)


def validate_checkpoints(settings: Settings) -> list[CheckpointReport]:
    """Check every query checkpoint under ``checkpoint_root``; raise :class:`CheckpointError` at
    the first corrupt or incompatible one. A missing root is fine (first start)."""
    root = settings.checkpoint_root.rstrip("/")
    try:
        storage = CheckpointStorage(root, settings)
    except (ImportError, OSError, ValueError) as exc:
        raise LogstreamError(
            f"cannot read the checkpoint root {root} from the supervisor ({exc}); give this host "
            "access to it (webhdfs_url, s3_endpoint and s3_credentials_file settings) so "
            "checkpoints can be checked"
        ) from exc
    reports = []
    for name, is_dir in storage.children(storage.root):
        if is_dir:
            reports.append(
                validate_checkpoint(
                    storage, f"{storage.root}/{name}", name, expected_topic(settings, name)
                )
            )
    return reports
