"""A local YARN on loopback: a ResourceManager and a NodeManager, each its own JVM started from
Apache Hadoop's own server jars (the ``yarn`` bundle, ``jvm/yarn``: the Hadoop version of the
installed pyspark): what the cluster suite runs ``spark_master=yarn`` against.

The two daemons run in separate JVMs, as on a real cluster (in one JVM, MiniYARNCluster's, their
web apps share a static Guice filter and the ResourceManager's REST API, which the supervisor
asks, answers with the NodeManager's pages).

Its folder (default ``<state_dir>/yarn``) holds ``conf/`` (``yarn-site.xml``, ``core-site.xml``
and ``log4j.properties``: point ``HADOOP_CONF_DIR`` at it), ``ports.json`` (picked at the first
start and reused), ``{rm,nm}.pid``, ``logs/{rm,nm}.log``, ``local/`` (the NodeManager's working
folders) and ``containers/`` (each container's ``stdout``/``stderr`` under
``<application>/<container>/``). The cluster's default file system is the local disk; containers
run as local processes of this user, with this machine's Java and the job's Python.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from logstream.config import Settings
from logstream.errors import ServiceError
from logstream.runtime.jars import bundle_jars
from logstream.runtime.java import find_java, java_home
from logstream.runtime.server import HOST, ServerProcess, free_port, port_open

RESOURCE_MANAGER = "org.apache.hadoop.yarn.server.resourcemanager.ResourceManager"
NODE_MANAGER = "org.apache.hadoop.yarn.server.nodemanager.NodeManager"
#: Guice (the daemons' web apps) defines classes by reflection, which Java 17 allows only where a
#: package is opened; small serial heaps for a 2-core test machine
_JVM_OPTIONS = (
    "-Xmx512m",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
)
#: warnings and the daemons' start and stop lines, to each daemon's log
LOG4J = """\
log4j.rootLogger=WARN, console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.yarn.server.resourcemanager.ResourceManager=INFO
log4j.logger.org.apache.hadoop.yarn.server.nodemanager.NodeManager=INFO
"""
_PORTS = ("rm", "scheduler", "tracker", "admin", "web", "nm", "localizer", "nm_web")


@dataclass(frozen=True)
class YarnStatus:
    running: bool
    rm_url: str
    nodes: int
    folder: Path

    def describe(self) -> str:
        if not self.running:
            return f"yarn: stopped (folder {self.folder})"
        return f"yarn: ResourceManager {self.rm_url}, {self.nodes} NodeManager(s) RUNNING"


class LocalYarn:
    """Start, stop and inspect a local YARN whose files live in ``home`` (default
    ``<state_dir>/yarn``); its NodeManager offers ``memory_mb`` and ``vcores``."""

    def __init__(
        self,
        settings: Settings,
        home: Path | None = None,
        memory_mb: int = 6144,
        vcores: int = 4,
    ) -> None:
        self.settings = settings
        self.home = Path(home) if home is not None else Path(settings.state_dir) / "yarn"
        self.conf_dir = self.home / "conf"
        self.ports_file = self.home / "ports.json"
        self.memory_mb = memory_mb
        self.vcores = vcores
        self.resource_manager = ServerProcess(
            "the local YARN ResourceManager", self.home / "rm.pid", self.home / "logs" / "rm.log"
        )
        self.node_manager = ServerProcess(
            "the local YARN NodeManager", self.home / "nm.pid", self.home / "logs" / "nm.log"
        )

    # -- where things are -----------------------------------------------------------------
    def _ports(self) -> dict[str, int]:
        try:
            ports = json.loads(self.ports_file.read_text())
        except (OSError, ValueError):
            return {}
        return {name: int(ports[name]) for name in _PORTS if name in ports}

    @property
    def rm_url(self) -> str:
        """The ResourceManager's web address (its REST API under ``/ws/v1/cluster``; the
        ``yarn_rm_url`` setting), or "" before the first start."""
        port = self._ports().get("web")
        return f"http://{HOST}:{port}" if port else ""

    @property
    def container_logs(self) -> Path:
        """``<application>/<container>/{stdout,stderr}`` of every container."""
        return self.home / "containers"

    def environment(self) -> dict[str, str]:
        """What spark-submit needs to reach this cluster (``HADOOP_CONF_DIR``, ``JAVA_HOME``)."""
        return {"HADOOP_CONF_DIR": str(self.conf_dir), "JAVA_HOME": java_home()}

    # -- configuration --------------------------------------------------------------------
    def site_properties(self, ports: dict[str, int]) -> dict[str, str]:
        """``yarn-site.xml``: every address on loopback, the NodeManager's resources, one
        capacity-scheduler queue (the minicluster jar has no ``capacity-scheduler.xml``)."""

        def at(name: str) -> str:
            return f"{HOST}:{ports[name]}"

        return {
            "yarn.resourcemanager.hostname": HOST,
            "yarn.resourcemanager.bind-host": HOST,
            "yarn.resourcemanager.address": at("rm"),
            "yarn.resourcemanager.scheduler.address": at("scheduler"),
            "yarn.resourcemanager.resource-tracker.address": at("tracker"),
            "yarn.resourcemanager.admin.address": at("admin"),
            "yarn.resourcemanager.webapp.address": at("web"),
            "yarn.nodemanager.hostname": HOST,
            "yarn.nodemanager.bind-host": HOST,
            "yarn.nodemanager.address": at("nm"),
            "yarn.nodemanager.localizer.address": at("localizer"),
            "yarn.nodemanager.webapp.address": at("nm_web"),
            "yarn.nodemanager.local-dirs": str(self.home / "local"),
            "yarn.nodemanager.log-dirs": str(self.container_logs),
            "yarn.nodemanager.resource.memory-mb": str(self.memory_mb),
            "yarn.nodemanager.resource.cpu-vcores": str(self.vcores),
            "yarn.scheduler.minimum-allocation-mb": "256",
            "yarn.scheduler.maximum-allocation-mb": str(self.memory_mb),
            # containers are measured by what they ask for, not killed for virtual memory
            "yarn.nodemanager.pmem-check-enabled": "false",
            "yarn.nodemanager.vmem-check-enabled": "false",
            # a nearly full local disk must not take the only NodeManager out
            "yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage": "100",
            "yarn.nodemanager.delete.debug-delay-sec": "600",
            "yarn.scheduler.capacity.root.queues": "default",
            "yarn.scheduler.capacity.root.default.capacity": "100",
            "yarn.scheduler.capacity.root.default.maximum-capacity": "100",
            "yarn.scheduler.capacity.root.default.user-limit-factor": "1",
            "yarn.scheduler.capacity.root.default.state": "RUNNING",
            "yarn.scheduler.capacity.root.default.acl_submit_applications": "*",
            "yarn.scheduler.capacity.root.default.acl_administer_queue": "*",
            "yarn.scheduler.capacity.maximum-am-resource-percent": "0.5",
            "yarn.scheduler.capacity.node-locality-delay": "-1",
        }

    def _write_conf(self, ports: dict[str, int]) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "log4j.properties").write_text(LOG4J)
        core = {"fs.defaultFS": "file:///", "hadoop.tmp.dir": str(self.home / "tmp")}
        for name, properties in (
            ("yarn-site.xml", self.site_properties(ports)),
            ("core-site.xml", core),
        ):
            body = "".join(
                f"  <property><name>{escape(key)}</name><value>{escape(value)}</value></property>\n"
                for key, value in properties.items()
            )
            (self.conf_dir / name).write_text(
                f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'
            )

    # -- lifecycle ------------------------------------------------------------------------
    def _command(self, main_class: str) -> list[str]:
        classpath = [str(self.conf_dir), *map(str, bundle_jars(self.settings, "yarn"))]
        return [find_java(), *_JVM_OPTIONS, "-cp", ":".join(classpath), main_class]

    def start(self, timeout: float = 180.0) -> YarnStatus:
        """Start whatever is not running (idempotent) and wait until the NodeManager is RUNNING
        on the ResourceManager."""
        ports = self._ports()
        if set(ports) != set(_PORTS):
            ports = {name: free_port() for name in _PORTS}
            self.home.mkdir(parents=True, exist_ok=True)
            self.ports_file.write_text(json.dumps(ports))
        self._write_conf(ports)
        # the NodeManager starts containers with its JAVA_HOME
        env = {**os.environ, "JAVA_HOME": java_home()}
        if self.resource_manager.pid() is None:
            self.resource_manager.launch(
                self._command(RESOURCE_MANAGER),
                lambda: self._info() is not None,
                timeout,
                cwd=self.home,
                env=env,
                poll=0.5,
            )
        if self.node_manager.pid() is None:
            self.node_manager.launch(
                self._command(NODE_MANAGER),
                lambda: port_open(HOST, ports["nm"]),
                timeout,
                cwd=self.home,
                env=env,
                poll=0.5,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running_nodes() >= 1:
                return self.status()
            time.sleep(0.5)
        raise ServiceError(
            f"the NodeManager did not register with the ResourceManager within {timeout:.0f}s; "
            f"see {self.node_manager.output} and {self.resource_manager.output}"
        )

    def stop(self) -> bool:
        stopped_nm = self.node_manager.stop(30.0, 10.0)
        stopped_rm = self.resource_manager.stop(30.0, 10.0)
        return stopped_nm or stopped_rm

    # -- state ----------------------------------------------------------------------------
    def _get(self, path: str) -> dict | None:
        url = self.rm_url
        if not url:
            return None
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=2.0) as answer:  # noqa: S310
                return json.load(answer)
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def _info(self) -> dict | None:
        """The ResourceManager's ``/ws/v1/cluster/info`` once it answers with it (STARTED)."""
        answer = self._get("/ws/v1/cluster/info") or {}
        info = answer.get("clusterInfo", answer)
        return info if info.get("state") == "STARTED" else None

    def running_nodes(self) -> int:
        nodes = rm_list(self._get("/ws/v1/cluster/nodes") or {}, "nodes", "node")
        return sum(node.get("state") == "RUNNING" for node in nodes)

    def status(self) -> YarnStatus:
        running = self.resource_manager.pid() is not None and self._info() is not None
        nodes = self.running_nodes() if running else 0
        return YarnStatus(running and nodes > 0, self.rm_url, nodes, self.home)


def rm_list(answer: dict, plural: str, singular: str) -> list[dict]:
    """The items of a ResourceManager REST list (``{"apps": {"app": [...]}}``; some builds leave
    out the inner level: ``{"apps": [...]}``; none: ``{"apps": null}``)."""
    items = answer.get(plural)
    if isinstance(items, dict):
        items = items.get(singular)
    if isinstance(items, dict):  # a single item, in some JSON notations
        items = [items]
    return list(items or [])
