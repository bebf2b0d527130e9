"""File operations on any supported location: a local path, ``file://``, ``hdfs://``,
``s3a://`` (and, through Spark, any Hadoop-compatible URI).

Two sides, one set of locations:

* :class:`HadoopFS` goes through a SparkSession's JVM (Hadoop's ``FileSystem``): sinks and job
  state, written by Spark jobs, on every scheme Hadoop knows;
* :class:`Storage` is plain Python beside Spark or without it (the supervisor, Airflow tasks,
  reports, Data Docs, status files), over fsspec: the local disk, HDFS through WebHDFS, S3
  through s3fs (``s3a://bucket/key`` is ``s3://bucket/key`` there), with the endpoint and
  credentials of :mod:`logstream.storage.remote`.

Small text files (status, summaries, reports) are replaced so that a reader sees the old content
or the new one: a temporary file renamed over the target on the local disk and on HDFS (WebHDFS
rename with OVERWRITE), a single PUT on S3. :func:`write_local_text` does it for files that are
local by nature (under ``state_dir``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.storage import remote

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from pyspark.sql import SparkSession

#: schemes :class:`Storage` reads and writes (``s3``/``s3n`` are spelt ``s3a`` by Hadoop)
REMOTE_SCHEMES = ("hdfs", "s3a", "s3", "webhdfs")


def local_path(location: str) -> Path | None:
    """The local path of a plain path or a ``file:`` URI; None for any other scheme."""
    if location.startswith("file://"):
        return Path(location.removeprefix("file://"))
    if location.startswith("file:"):
        return Path(location.removeprefix("file:"))
    if "://" in location:
        return None
    return Path(location)


def join(location: str | Path, *parts: str) -> str:
    """``location`` with ``parts`` appended by ``/``, for paths and URIs alike."""
    text = str(location)
    return "/".join([text.rstrip("/") or "/", *(part.strip("/") for part in parts)])


def write_local_text(path: Path, text: str) -> None:
    """Write ``text`` to a local file so readers see the old content or the new one, never a half
    file (a hidden temporary file beside it, renamed over it); creates the folder."""
    _write_local(Path(path), text.encode("utf-8"))


def _write_local(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # one temporary name per writer: two processes or threads never write the same one
    tmp = path.with_name(_temporary_name(path.name))
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _temporary_name(name: str) -> str:
    return f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"


@dataclass(frozen=True)
class Location:
    """A location split for fsspec: ``scheme`` (``file``, ``hdfs`` or ``s3``), ``authority``
    (NameNode ``host:port``, bucket, or "") and ``path`` as fsspec names it (an absolute local
    path, ``/dir/file`` on HDFS, ``bucket/key`` on S3); ``prefix`` turns an fsspec path back
    into the location's own spelling."""

    scheme: str
    authority: str
    path: str
    prefix: str

    def back(self, fs_path: str) -> str:
        """The location of ``fs_path`` (an fsspec path on the same filesystem)."""
        if self.scheme == "file":
            return fs_path if not self.prefix else f"{self.prefix}{fs_path}"
        if self.scheme == "hdfs":
            return f"{self.prefix}{fs_path if fs_path.startswith('/') else '/' + fs_path}"
        return f"{self.prefix}{fs_path.lstrip('/')}"


def parse_location(location: str | Path) -> Location:
    """Split a local path, ``file:``, ``hdfs://``, ``s3a://`` (or ``s3://``) location; any other
    scheme is a ConfigError (Python-side code cannot read it)."""
    text = str(location)
    local = local_path(text)
    if local is not None:
        absolute = str(Path(os.path.expanduser(local)).absolute())
        return Location("file", "", absolute, "file://" if text.startswith("file:") else "")
    scheme, _, rest = text.partition("://")
    authority, _, path = rest.partition("/")
    scheme = scheme.lower()
    if scheme in ("hdfs", "webhdfs"):
        if not authority:
            raise ConfigError(
                f"{text!r} names no NameNode; write hdfs://<namenode>:<port>/path (a default "
                "file system from Hadoop's core-site.xml is not read here)"
            )
        return Location("hdfs", authority, "/" + path, f"{scheme}://{authority}")
    if scheme in ("s3a", "s3", "s3n"):
        if not authority:
            raise ConfigError(f"{text!r} names no bucket; write s3a://<bucket>/path")
        return Location("s3", authority, f"{authority}/{path}".rstrip("/"), f"{scheme}://")
    raise ConfigError(
        f"{text!r}: the {scheme}:// scheme is not supported outside Spark (reports, status "
        "files and Data Docs); use a local path, hdfs:// or s3a://"
    )


def is_local(location: str | Path) -> bool:
    return local_path(str(location)) is not None


class Storage:
    """Python-side file operations on any location of :func:`parse_location` for ``settings``
    (S3 endpoint and credentials, WebHDFS address). Missing files read as None, list as empty.

    ``filesystem(location)`` gives the fsspec filesystem and path, for readers that take one
    (pyarrow's Parquet reader)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._filesystems: dict[tuple[str, str], AbstractFileSystem] = {}
        self._lock = threading.Lock()

    def filesystem(self, location: str | Path) -> tuple[AbstractFileSystem, str]:
        where = parse_location(location)
        return self._fs(where), where.path

    def arrow_filesystem(self, location: str | Path) -> tuple[Any, str]:
        """A ``pyarrow.fs.FileSystem`` and path for ``location`` (pyarrow's Parquet readers):
        pyarrow's own for the local disk, fsspec's through ``FSSpecHandler`` otherwise."""
        import pyarrow.fs as pafs

        where = parse_location(location)
        if where.scheme == "file":
            return pafs.LocalFileSystem(), where.path
        return pafs.PyFileSystem(pafs.FSSpecHandler(self._fs(where))), where.path

    def _fs(self, where: Location) -> AbstractFileSystem:
        key = (where.scheme, where.authority if where.scheme == "hdfs" else "")
        with self._lock:
            if key not in self._filesystems:
                self._filesystems[key] = self._open(where)
            return self._filesystems[key]

    def _open(self, where: Location) -> AbstractFileSystem:
        if where.scheme == "file":
            from fsspec.implementations.local import LocalFileSystem

            return LocalFileSystem()
        if where.scheme == "hdfs":
            from fsspec.implementations.webhdfs import WebHDFS

            host, port, https = remote.webhdfs_address(self.settings, where.authority)
            return WebHDFS(
                host,
                port=port,
                user=remote.hdfs_user(self.settings),
                use_https=https,
                skip_instance_cache=True,
            )
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, **remote.s3fs_options(self.settings))

    # -- reading -------------------------------------------------------------------------------

    def exists(self, location: str | Path) -> bool:
        fs, path = self.filesystem(location)
        return bool(fs.exists(path))

    def is_file(self, location: str | Path) -> bool:
        fs, path = self.filesystem(location)
        try:
            return bool(fs.isfile(path))
        except FileNotFoundError:
            return False

    def read_bytes(self, location: str | Path) -> bytes | None:
        fs, path = self.filesystem(location)
        try:
            return fs.cat_file(path)
        except (FileNotFoundError, IsADirectoryError):
            return None

    def read_text(self, location: str | Path) -> str | None:
        data = self.read_bytes(location)
        return None if data is None else data.decode("utf-8")

    def list_names(self, location: str | Path) -> list[str]:
        """Names of the direct children of ``location`` (empty if it does not exist)."""
        fs, path = self.filesystem(location)
        try:
            entries = fs.ls(path, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = [entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries]
        return sorted(name for name in names if name)

    def list_files(self, location: str | Path, suffix: str = "") -> list[str]:
        """Every file below ``location`` (recursive) whose name ends with ``suffix``, as
        locations in ``location``'s spelling, sorted."""
        return sorted(
            entry.location for entry in self.walk(location) if entry.name.endswith(suffix)
        )

    def walk(self, location: str | Path) -> Iterator[Entry]:
        """Every file below ``location`` (recursive) with its size and modification time."""
        where = parse_location(location)
        fs = self._fs(where)
        try:
            found = fs.find(where.path, detail=True)
        except FileNotFoundError:
            return
        for fs_path, info in sorted(found.items()):
            if info.get("type") == "directory":
                continue
            yield Entry(where.back(fs_path), int(info.get("size") or 0), _modified(info))

    # -- writing -------------------------------------------------------------------------------

    def write_text(self, location: str | Path, text: str) -> None:
        """Replace ``location``'s content: readers see the old text or the new one (see the
        module's docstring); creates the folder."""
        self.write_bytes(location, text.encode("utf-8"))

    def write_bytes(self, location: str | Path, data: bytes) -> None:
        where = parse_location(location)
        if where.scheme == "file":
            _write_local(Path(where.path), data)
            return
        fs = self._fs(where)
        if where.scheme == "s3":
            fs.pipe_file(where.path, data)  # one PUT: atomic
            return
        # WebHDFS CREATE makes the missing folders itself
        folder, _, name = where.path.rpartition("/")
        tmp = f"{folder}/{_temporary_name(name)}"
        fs.pipe_file(tmp, data)
        try:
            self._hdfs_rename(fs, tmp, where.path, overwrite=True)
        except BaseException:
            fs.rm(tmp)
            raise

    def put_tree(self, folder: Path, location: str | Path) -> int:
        """Copy every file below the local ``folder`` to the same relative paths below
        ``location`` (each file replaced as by :meth:`write_bytes`), except hidden ones (names
        starting with ``.``: Hadoop's ``.crc`` side files); returns how many."""
        copied = 0
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                self.write_bytes(
                    join(location, path.relative_to(folder).as_posix()), path.read_bytes()
                )
                copied += 1
        return copied

    def mkdirs(self, location: str | Path) -> None:
        fs, path = self.filesystem(location)
        fs.makedirs(path, exist_ok=True)

    def delete(self, location: str | Path, recursive: bool = True) -> None:
        """Delete a file, or a folder and what it holds; nothing if it does not exist."""
        fs, path = self.filesystem(location)
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path, recursive=recursive)

    def rename(self, source: str | Path, target: str | Path) -> None:
        """Move ``source`` (a file or a folder) to ``target``, which must not exist; creates the
        target's folder. On S3 a folder is copied then deleted, file by file."""
        where, to = parse_location(source), parse_location(target)
        if (where.scheme, where.authority) != (to.scheme, to.authority) and where.scheme != "s3":
            raise ConfigError(f"cannot rename {source} to {target}: not on one file system")
        fs = self._fs(where)
        parent = to.path.rpartition("/")[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        if where.scheme == "hdfs":
            self._hdfs_rename(fs, where.path, to.path, overwrite=False)
        else:
            fs.mv(where.path, to.path, recursive=True)

    @staticmethod
    def _hdfs_rename(fs: Any, source: str, target: str, overwrite: bool) -> None:
        # rename2 (any rename option) fails with the NameNode's reason instead of answering false
        option = "OVERWRITE" if overwrite else "NONE"
        fs._call("RENAME", method="put", path=source, destination=target, renameoptions=option)

    def uri(self, location: str | Path) -> str:
        """A URI for ``location``: ``file://`` for a local path, else the location itself."""
        where = parse_location(location)
        return Path(where.path).as_uri() if where.scheme == "file" else str(location)


@dataclass(frozen=True)
class Entry:
    """One file found by :meth:`Storage.walk`: its location, size and modification time
    (epoch seconds)."""

    location: str
    size: int
    modified: float

    @property
    def name(self) -> str:
        return self.location.rstrip("/").rsplit("/", 1)[-1]


def _modified(info: dict) -> float:
    """The modification time in an fsspec info dict, as epoch seconds (local: ``mtime``, WebHDFS:
    ``modificationTime`` in ms, s3fs: ``LastModified``)."""
    if "mtime" in info:
        return float(info["mtime"])
    if "modificationTime" in info:
        return float(info["modificationTime"]) / 1000
    moment = info.get("LastModified")
    if isinstance(moment, datetime):
        return moment.timestamp()
    return 0.0


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
