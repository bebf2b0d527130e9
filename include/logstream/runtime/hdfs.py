"""A local HDFS on loopback: Apache Hadoop's MiniDFSCluster (one NameNode, one DataNode), for
tests and for trying ``data_root=hdfs://...`` on one machine.

It runs ``jvm/hdfs-minicluster``'s launcher (built by ``logstream jars fetch``) with the
``hdfs-minicluster`` bundle and the Hadoop client jars of the installed pyspark, so Spark's
``hdfs://`` client and the cluster are the same Hadoop version. Its folder (default
``<state_dir>/hdfs``) holds ``base/`` (the NameNode's and DataNode's storage, kept between
starts), ``hdfs.pid``, ``ready.json`` (the ports, written once the DataNode has registered),
``rpc_port``/``http_port`` (free ports picked at the first start and reused) and
``logs/hdfs.log``. Permission checks are off: a local cluster has one user.

Spark reaches it at :attr:`LocalHdfs.url` (``hdfs://127.0.0.1:<rpc port>``); Python-side code
(:class:`logstream.storage.fs.Storage`) through WebHDFS at :attr:`LocalHdfs.webhdfs_url`.
"""

from __future__ import annotations

import json
from pathlib import Path

from logstream.config import Settings
from logstream.runtime.jars import build_hdfs_main_jar, bundle_jars, spark_home
from logstream.runtime.java import find_java
from logstream.runtime.server import HOST, ServerProcess, ServerStatus, choose_port, port_open

MAIN_CLASS = "dev.logstream.hdfs.MiniHdfs"
#: pyspark's jars the cluster runs with: the Hadoop client and the logging it expects
_SPARK_JAR_PREFIXES = (
    "hadoop-client-api-",
    "hadoop-client-runtime-",
    "slf4j-api-",
    "log4j-api-",
    "log4j-core-",
    "log4j-slf4j2-impl-",
    "log4j-1.2-api-",
    "jcl-over-slf4j-",
)
#: a short-lived test server: the client compiler only, a small serial heap
_JVM_OPTIONS = ("-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


class LocalHdfs(ServerProcess):
    """Start, stop and inspect a local HDFS whose state lives in ``home`` (default
    ``<state_dir>/hdfs``). Ports: ``rpc_port``/``http_port`` when given, else free ports picked
    at the first start and reused."""

    def __init__(
        self,
        settings: Settings,
        home: Path | None = None,
        rpc_port: int = 0,
        http_port: int = 0,
    ) -> None:
        self.settings = settings
        self.home = Path(home) if home is not None else Path(settings.state_dir) / "hdfs"
        self.ready_file = self.home / "ready.json"
        self.log_file = self.home / "logs" / "hdfs.log"
        self._configured = {"rpc_port": rpc_port, "http_port": http_port}
        super().__init__("the local HDFS", self.home / "hdfs.pid", self.log_file)

    def _ports(self) -> dict[str, int]:
        """The ports of the running cluster (its ready file), or {} before it is ready."""
        try:
            ports = json.loads(self.ready_file.read_text())
        except (OSError, ValueError):
            return {}
        return {name: int(ports[name]) for name in ("rpc_port", "http_port") if name in ports}

    @property
    def url(self) -> str:
        """``hdfs://127.0.0.1:<rpc port>`` (what ``data_root`` etc. start with), or ""."""
        port = self._ports().get("rpc_port")
        return f"hdfs://{HOST}:{port}" if port else ""

    @property
    def webhdfs_url(self) -> str:
        """``http://127.0.0.1:<http port>``: the ``webhdfs_url`` setting for this cluster."""
        port = self._ports().get("http_port")
        return f"http://{HOST}:{port}" if port else ""

    def settings_overrides(self) -> dict[str, str]:
        """The settings that point Python-side storage access at this cluster."""
        return {"webhdfs_url": self.webhdfs_url}

    def classpath(self) -> list[str]:
        spark_jars = sorted((spark_home() / "jars").glob("*.jar"))
        shared = [str(jar) for jar in spark_jars if jar.name.startswith(_SPARK_JAR_PREFIXES)]
        bundle = [str(jar) for jar in bundle_jars(self.settings, "hdfs-minicluster")]
        return [str(build_hdfs_main_jar(self.settings)), *bundle, *shared]

    def start(self, timeout: float = 180.0) -> ServerStatus:
        """Start it (idempotent) and wait until the DataNode has registered."""
        status = self.status()
        if status.running:
            return status
        rpc_port, http_port = (
            choose_port(
                self.home / name,
                self._configured[name],
                name=self.name,
                change_port=f"pass another {name} to LocalHdfs (0 picks one)",
            )
            for name in ("rpc_port", "http_port")
        )
        self.ready_file.unlink(missing_ok=True)
        (self.home / "base").mkdir(parents=True, exist_ok=True)
        command = [
            find_java(),
            *_JVM_OPTIONS,
            "-cp",
            ":".join(self.classpath()),
            MAIN_CLASS,
            str(self.home / "base"),
            str(rpc_port),
            str(http_port),
            str(self.ready_file),
        ]
        self.launch(command, lambda: bool(self._ports()) and port_open(HOST, rpc_port), timeout)
        return self.status()

    def stop(self, timeout: float = 30.0, kill_after: float = 10.0) -> bool:
        stopped = super().stop(timeout, kill_after)
        self.ready_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> ServerStatus:
        pid = self.pid()
        ports = self._ports()
        running = pid is not None and bool(ports) and port_open(HOST, ports["rpc_port"])
        return ServerStatus(
            "hdfs",
            running,
            pid,
            self.url,
            self.home,
            self.log_file,
            stopped_note=f"folder {self.home}",
        )
