"""The shared storage the tests run against: a local HDFS (MiniDFSCluster) and a local S3
(s3proxy), started side by side, and the settings that put a test's roots on either."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from logstream.config import Settings
from logstream.runtime.hdfs import LocalHdfs
from logstream.runtime.s3 import LocalS3

BUCKET = "logstream-tests"


@dataclass
class RemoteStores:
    hdfs: LocalHdfs
    s3: LocalS3
    started_s: dict[str, float]

    def root(self, kind: str, name: str) -> str:
        """A fresh root on ``kind`` (``hdfs`` or ``s3a``) for one test."""
        if kind == "hdfs":
            return f"{self.hdfs.url}/{name}"
        return f"s3a://{BUCKET}/{name}"

    def settings(self, base: Settings) -> Settings:
        """``base`` with the S3 endpoint, credentials file and WebHDFS address of the stores."""
        return base.replace(**self.s3.settings_overrides(), **self.hdfs.settings_overrides())


@contextmanager
def remote_stores(settings: Settings, home: Path) -> Iterator[RemoteStores]:
    """Start both servers at once (HDFS takes 15-30 s, S3 a few), stop both afterwards."""
    hdfs, s3 = LocalHdfs(settings, home / "hdfs"), LocalS3(settings, home / "s3")
    started: dict[str, float] = {}

    def start(name: str, server) -> None:
        began = time.monotonic()
        server.start()
        started[name] = round(time.monotonic() - began, 1)

    try:
        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(start, "hdfs", hdfs), pool.submit(start, "s3", s3)]:
                future.result()
        s3.create_bucket(BUCKET)
        yield RemoteStores(hdfs, s3, started)
    finally:
        hdfs.stop()
        s3.stop()
