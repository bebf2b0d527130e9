"""File operations on any Hadoop-compatible path (local, s3a://, abfss://, hdfs://) via Spark's JVM.

Sinks and job state go through here so that a local folder and an object store behave alike.
"""

from __future__ import annotations

from pyspark.sql import SparkSession


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
