"""File operations on any Hadoop-compatible path (local, s3a://, abfss://, hdfs://) via Spark's JVM,
and the few that only a local folder allows.

Sinks and job state go through :class:`HadoopFS` so that a local folder and an object store behave
alike. Files a person opens or an Airflow task reads back (HTML reports, run summaries) need a
folder on this machine: :func:`local_path` says whether a location is one, and
:func:`write_local_text` replaces such a file atomically.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def local_path(location: str) -> Path | None:
    """The local path of a plain path or a ``file://`` URI; None for any other scheme."""
    if location.startswith("file://"):
        return Path(location.removeprefix("file://"))
    if "://" in location:
        return None
    return Path(location)


def write_local_text(path: Path, text: str) -> None:
    """Write ``text`` to a local file so readers see the old content or the new one, never a half
    file (a hidden temporary file beside it, renamed over it); creates the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # one temporary name per writer: two processes or threads never write the same one
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class FileStatus:
    """One file: its qualified path as a URI (what Spark's ``_metadata.file_path`` shows, e.g.
    ``file:/data/a%20b.log``) and as a Hadoop path string (``file:/data/a b.log``, what readers
    take), its size in bytes and its modification time (epoch ms)."""

    uri: str
    path: str
    size: int
    modified_ms: int


class HadoopFS:
    """A thin wrapper over ``org.apache.hadoop.fs.FileSystem`` for one SparkSession."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, path: str):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def _fs(self, path: str):
        return self._path(path).getFileSystem(self._conf)

    def exists(self, path: str) -> bool:
        return bool(self._fs(path).exists(self._path(path)))

    def mkdirs(self, path: str) -> None:
        self._fs(path).mkdirs(self._path(path))

    def delete(self, path: str, recursive: bool = True) -> None:
        fs = self._fs(path)
        if fs.exists(self._path(path)):
            fs.delete(self._path(path), recursive)

    def rename(self, source: str, target: str) -> None:
        fs = self._fs(source)
        parent = self._path(target).getParent()
        if parent is not None and not fs.exists(parent):
            fs.mkdirs(parent)
        if not fs.rename(self._path(source), self._path(target)):
            raise OSError(f"could not rename {source} to {target}")

    def list_files(self, path: str, suffix: str = "") -> list[str]:
        """Every file below ``path`` (recursive), as full path strings."""
        fs = self._fs(path)
        if not fs.exists(self._path(path)):
            return []
        found = []
        iterator = fs.listFiles(self._path(path), True)
        while iterator.hasNext():
            name = iterator.next().getPath().toString()
            if name.endswith(suffix):
                found.append(name)
        return found

    def glob_files(self, pattern: str) -> list[FileStatus]:
        """The files a Hadoop glob (or a plain path) matches, sorted by URI. A matched directory
        contributes every file below it. Names starting with ``_`` or ``.`` (``_SUCCESS``,
        ``.crc``, hidden folders) are skipped, as Spark and Hadoop tools skip them."""
        fs = self._fs(pattern)
        found: dict[str, FileStatus] = {}
        for match in fs.globStatus(self._path(pattern)) or []:
            if not match.isDirectory():
                if not _hidden(match.getPath().getName()):
                    status = self._status(match)
                    found[status.uri] = status
                continue
            root = match.getPath().toUri().getPath().rstrip("/")
            iterator = fs.listFiles(match.getPath(), True)
            while iterator.hasNext():
                child = iterator.next()
                below = child.getPath().toUri().getPath()[len(root) :].strip("/")
                if not any(_hidden(part) for part in below.split("/")):
                    status = self._status(child)
                    found[status.uri] = status
        return [found[uri] for uri in sorted(found)]

    def _status(self, status) -> FileStatus:
        # one spelling per file: listFiles says file:///x where globStatus and Spark say file:/x
        uri = status.getPath().toUri()
        path = self._jvm.org.apache.hadoop.fs.Path(
            uri.getScheme(), uri.getAuthority(), uri.getPath()
        )
        return FileStatus(
            path.toUri().toString(),
            path.toString(),
            int(status.getLen()),
            int(status.getModificationTime()),
        )

    def list_names(self, path: str) -> list[str]:
        """Names of the direct children of ``path`` (empty if it does not exist)."""
        fs = self._fs(path)
        if not fs.exists(self._path(path)):
            return []
        return [status.getPath().getName() for status in fs.listStatus(self._path(path))]

    def read_text(self, path: str) -> str | None:
        fs = self._fs(path)
        if not fs.exists(self._path(path)):
            return None
        stream = fs.open(self._path(path))
        try:
            reader = self._jvm.java.io.BufferedReader(
                self._jvm.java.io.InputStreamReader(stream, "UTF-8")
            )
            lines = []
            line = reader.readLine()
            while line is not None:
                lines.append(line)
                line = reader.readLine()
            return "\n".join(lines)
        finally:
            stream.close()

    def write_text(self, path: str, text: str) -> None:
        """Write ``text`` so readers see the old content or the new one, never a half file."""
        fs = self._fs(path)
        tmp = self._path(path + ".tmp")
        stream = fs.create(tmp, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        if fs.exists(self._path(path)):
            fs.delete(self._path(path), False)
        if not fs.rename(tmp, self._path(path)):
            raise OSError(f"could not publish {path}")


def _hidden(name: str) -> bool:
    return name.startswith(("_", "."))
