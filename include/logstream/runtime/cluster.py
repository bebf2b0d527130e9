"""A Spark standalone cluster on loopback: one master and two workers from the installed pyspark.

For the cluster tests and ``logstream cluster up``: the same daemons a team runs
(``spark-class org.apache.spark.deploy.master.Master`` / ``...worker.Worker``), each a
:class:`~logstream.runtime.server.ServerProcess` (pid file, detached start, SIGTERM then SIGKILL).
The master serves its RPC port, its web UI (whose ``/json/`` says which workers are ALIVE) and the
REST submission server (``spark.master.rest.enabled``) through which cluster-mode drivers are
submitted, polled and killed. It recovers its applications, drivers and workers from
``recovery/`` after a restart (``spark.deploy.recoveryMode=FILESYSTEM``), as a team's master does
from ZooKeeper, so a master restart does not lose a running driver.

Everything lives under one folder (by default ``<state_dir>/spark-cluster/``): ``ports.json``
(kept between starts), ``master/`` and ``worker-<n>/`` (pid file, log, the worker's ``work/``
folder with each driver's and executor's output), ``recovery/``. Sized for a 2-core machine:
each worker offers ``worker_cores`` cores and ``worker_memory``; a streaming driver takes one core
of one worker, its executors the rest.

The streaming job's application name (:func:`stream_app_name`) is defined here too: it tags the
checkpoint root and, on a standalone worker, the driver's id, which is how the supervisor finds
the job among a cluster's applications.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logstream.config import Settings
from logstream.errors import ServiceError
from logstream.runtime.jars import spark_home
from logstream.runtime.java import java_home
from logstream.runtime.server import HOST, ServerProcess, free_port, port_open

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
#: The daemons' own heap: they only schedule (drivers and executors are separate JVMs).
DAEMON_MEMORY = "256m"


# -- the streaming job's application name --------------------------------------------------


def checkpoint_tag(settings: Settings) -> str:
    """A short, stable tag of ``checkpoint_root``: the same job on the same checkpoints has the
    same tag on every host."""
    return hashlib.sha1(str(settings.checkpoint_root).encode()).hexdigest()[:12]  # noqa: S324


def stream_app_name(settings: Settings, driver_id: str = "") -> str:
    """The streaming job's Spark application name: ``logstream-stream-<tag>``, plus the cluster's
    id of its driver when it runs as one (``driver-...``), so the master's list of applications
    tells which application is which driver."""
    base = f"logstream-stream-{checkpoint_tag(settings)}"
    return f"{base} {driver_id}" if driver_id else base


def standalone_driver_id() -> str:
    """This process's standalone driver id, or "": a worker runs each driver in its own work
    folder named after it (``.../work/driver-<date>-<n>``)."""
    name = Path.cwd().name
    return name if re.fullmatch(r"driver-\d{14}-\d{4,}", name) else ""


# -- the cluster -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterPorts:
    """The loopback ports of one cluster, chosen at its first start and kept in ``ports.json``."""

    master: int
    master_ui: int
    rest: int
    workers: tuple[tuple[int, int], ...]  # (rpc port, web UI port) per worker

    @classmethod
    def pick(cls, workers: int) -> ClusterPorts:
        taken: set[int] = set()

        def one() -> int:
            while True:
                port = free_port()
                if port not in taken:
                    taken.add(port)
                    return port

        return cls(one(), one(), one(), tuple((one(), one()) for _ in range(workers)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "master": self.master,
            "master_ui": self.master_ui,
            "rest": self.rest,
            "workers": [list(pair) for pair in self.workers],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterPorts:
        return cls(
            int(data["master"]),
            int(data["master_ui"]),
            int(data["rest"]),
            tuple((int(rpc), int(ui)) for rpc, ui in data["workers"]),
        )

    def all(self) -> list[int]:
        return [self.master, self.master_ui, self.rest, *(p for pair in self.workers for p in pair)]


@dataclass(frozen=True)
class ClusterStatus:
    """What :meth:`LocalSparkCluster.status` says: the master's URLs and the workers it sees."""

    running: bool
    master_url: str
    rest_url: str
    web_url: str
    alive_workers: int
    workers: int
    active_apps: list[str]
    active_drivers: list[str]
    folder: Path

    def describe(self) -> str:
        if not self.running:
            return (
                f"spark cluster: stopped (folder {self.folder}); start it with "
                "`logstream cluster up`"
            )
        return (
            f"spark cluster: master {self.master_url} (REST {self.rest_url}, UI {self.web_url}), "
            f"{self.alive_workers}/{self.workers} workers ALIVE, applications "
            f"{self.active_apps or 'none'}, drivers {self.active_drivers or 'none'}; "
            f"folder {self.folder}"
        )


def master_state(web_url: str, timeout: float = 3.0) -> dict[str, Any]:
    """The master's JSON state (``GET <web UI>/json/``): workers, active and completed
    applications and drivers. Raises :class:`ServiceError` when the master does not answer."""
    try:
        with urllib.request.urlopen(f"{web_url}/json/", timeout=timeout) as answer:  # noqa: S310
            return json.load(answer)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ServiceError(
            f"the Spark master's web UI at {web_url} did not answer /json/ ({exc}); is the "
            "master running (`logstream cluster status`)?"
        ) from exc


class LocalSparkCluster:
    """Start, stop and inspect a master and ``workers`` workers on 127.0.0.1 (free ports).

    ``worker_cores`` / ``worker_memory`` are what each worker offers to drivers and executors.
    The tests use :meth:`kill_worker` and :meth:`restart_master` to break it on purpose.
    """

    def __init__(
        self,
        folder: str | Path,
        workers: int = 2,
        worker_cores: int = 2,
        worker_memory: str = "3g",
    ) -> None:
        self.folder = Path(folder)
        self.worker_count = workers
        self.worker_cores = worker_cores
        self.worker_memory = worker_memory
        self.master = ServerProcess(
            "the Spark master",
            self.folder / "master" / "master.pid",
            self.folder / "master" / "master.log",
        )
        self.workers = [
            ServerProcess(
                f"Spark worker {n}",
                self.folder / f"worker-{n}" / "worker.pid",
                self.folder / f"worker-{n}" / "worker.log",
            )
            for n in range(1, workers + 1)
        ]

    @classmethod
    def for_settings(cls, settings: Settings, **options: Any) -> LocalSparkCluster:
        """The project's cluster, under ``<state_dir>/spark-cluster``."""
        return cls(Path(settings.state_dir) / "spark-cluster", **options)

    # -- addresses ---------------------------------------------------------------------------
    @property
    def ports_file(self) -> Path:
        return self.folder / "ports.json"

    @property
    def ports(self) -> ClusterPorts | None:
        try:
            return ClusterPorts.from_dict(json.loads(self.ports_file.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _ports(self) -> ClusterPorts:
        ports = self.ports
        if ports is None:
            raise ServiceError(
                f"the Spark cluster in {self.folder} was never started; run `logstream cluster up`"
            )
        return ports

    @property
    def master_url(self) -> str:
        """``spark://127.0.0.1:<port>``: what ``spark_master`` is set to."""
        return f"spark://{HOST}:{self._ports().master}"

    @property
    def rest_url(self) -> str:
        """The REST submission server, ``http://127.0.0.1:<port>`` (``spark_rest_url``)."""
        return f"http://{HOST}:{self._ports().rest}"

    @property
    def web_url(self) -> str:
        """The master's web UI, whose ``/json/`` is its state."""
        return f"http://{HOST}:{self._ports().master_ui}"

    def worker_dir(self, index: int) -> Path:
        """Worker ``index``'s (1-based) work folder: one subfolder per driver and application."""
        return self.folder / f"worker-{index}" / "work"

    # -- lifecycle -------------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("JAVA_HOME", java_home())
        env["SPARK_HOME"] = str(spark_home())
        env["SPARK_LOCAL_IP"] = HOST
        env["SPARK_DAEMON_MEMORY"] = DAEMON_MEMORY
        env["SPARK_NO_DAEMONIZE"] = "1"
        env.pop("PYSPARK_GATEWAY_PORT", None)
        env.pop("PYSPARK_GATEWAY_SECRET", None)
        return env

    def _properties(self, ports: ClusterPorts) -> Path:
        """The daemons' properties file (REST submissions on, recovery from disk)."""
        recovery = self.folder / "recovery"
        recovery.mkdir(parents=True, exist_ok=True)
        lines = {
            "spark.master.rest.enabled": "true",
            "spark.master.rest.port": str(ports.rest),
            "spark.master.rest.host": HOST,
            "spark.deploy.recoveryMode": "FILESYSTEM",
            "spark.deploy.recoveryDirectory": str(recovery),
            # a killed worker is declared dead after this (default 60 s)
            "spark.worker.timeout": "30",
            "spark.ui.showConsoleProgress": "false",
        }
        path = self.folder / "spark-daemons.conf"
        path.write_text("".join(f"{key} {value}\n" for key, value in lines.items()))
        return path

    def _class_command(self, main_class: str, *args: str) -> list[str]:
        return [str(spark_home() / "bin" / "spark-class"), main_class, *args]

    def start(self, timeout: float = 120.0) -> ClusterStatus:
        """Start whatever is not running and wait until every worker is ALIVE on the master.
        Idempotent."""
        ports = self.ports
        if ports is None or len(ports.workers) != self.worker_count:
            ports = ClusterPorts.pick(self.worker_count)
            self.folder.mkdir(parents=True, exist_ok=True)
            self.ports_file.write_text(json.dumps(ports.as_dict()))
        self._start_master(ports, timeout)
        for index in range(1, self.worker_count + 1):
            self.start_worker(index, timeout, wait=False)
        self.wait_for_workers(self.worker_count, timeout)
        return self.status()

    def _start_master(self, ports: ClusterPorts, timeout: float) -> None:
        if self.master.pid() is not None:
            return
        for port in (ports.master, ports.master_ui, ports.rest):
            if port_open(HOST, port):
                raise ServiceError(
                    f"port {HOST}:{port} of the Spark master is taken by another process; stop "
                    f"it or delete {self.ports_file} to pick new ports"
                )
        properties = self._properties(ports)
        command = self._class_command(
            MASTER_CLASS,
            "--host", HOST,
            "--port", str(ports.master),
            "--webui-port", str(ports.master_ui),
            "--properties-file", str(properties),
        )  # fmt: skip
        self._launch(self.master, command, lambda: self._master_answers(ports), timeout)

    def _master_answers(self, ports: ClusterPorts) -> bool:
        try:
            state = master_state(f"http://{HOST}:{ports.master_ui}", timeout=1.0)
        except ServiceError:
            return False
        return state.get("status") == "ALIVE" and port_open(HOST, ports.rest)

    def start_worker(self, index: int, timeout: float = 120.0, wait: bool = True) -> None:
        """Start worker ``index`` (1-based) if it is not running; ``wait`` until the master sees
        it ALIVE."""
        ports = self._ports()
        worker = self.workers[index - 1]
        if worker.pid() is None:
            rpc, ui = ports.workers[index - 1]
            work = self.worker_dir(index)
            work.mkdir(parents=True, exist_ok=True)
            command = self._class_command(
                WORKER_CLASS,
                "--host", HOST,
                "--port", str(rpc),
                "--webui-port", str(ui),
                "--cores", str(self.worker_cores),
                "--memory", self.worker_memory,
                "--work-dir", str(work),
                "--properties-file", str(self.folder / "spark-daemons.conf"),
                f"spark://{HOST}:{ports.master}",
            )  # fmt: skip
            self._launch(worker, command, lambda: port_open(HOST, rpc), timeout)
        if wait:
            self.wait_for_workers(self.alive_worker_count_expected(), timeout)

    def alive_worker_count_expected(self) -> int:
        """How many workers run as processes now (each should be ALIVE on the master)."""
        return sum(worker.pid() is not None for worker in self.workers)

    def _launch(self, process: ServerProcess, command: list[str], ready, timeout: float) -> None:
        process.launch(command, ready, timeout, cwd=self.folder, env=self._environment(), poll=0.5)
        # spark-class execs java in place: the recorded pid is the daemon's JVM

    def wait_for_workers(self, count: int, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the master lists ``count`` ALIVE workers; the master's state."""
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                state = master_state(self.web_url, timeout=2.0)
            except ServiceError:
                state = {}
            if state.get("status") == "ALIVE" and self._alive_workers(state) >= count:
                return state
            time.sleep(0.5)
        raise ServiceError(
            f"the Spark master at {self.web_url} lists {self._alive_workers(state)} ALIVE "
            f"workers, not {count}, after {timeout:.0f}s; see the logs under {self.folder}"
        )

    @staticmethod
    def _alive_workers(state: dict[str, Any]) -> int:
        return sum(worker.get("state") == "ALIVE" for worker in state.get("workers", []))

    def stop(self) -> bool:
        """Stop the workers, then the master (their drivers and executors die with the
        workers). False when nothing was running."""
        stopped = [worker.stop() for worker in self.workers]
        stopped.append(self.master.stop())
        return any(stopped)

    def status(self) -> ClusterStatus:
        running = self.master.pid() is not None and self.ports is not None
        state: dict[str, Any] = {}
        if running:
            try:
                state = master_state(self.web_url, timeout=2.0)
            except ServiceError:
                running = False
        urls = (self.master_url, self.rest_url, self.web_url) if self.ports else ("", "", "")
        return ClusterStatus(
            running,
            *urls,
            alive_workers=self._alive_workers(state),
            workers=self.worker_count,
            active_apps=[app.get("name", "") for app in state.get("activeapps", [])],
            active_drivers=[
                f"{d.get('id')} ({d.get('state')})" for d in state.get("activedrivers", [])
            ],
            folder=self.folder,
        )

    def state(self) -> dict[str, Any]:
        """The master's JSON state (:func:`master_state`)."""
        return master_state(self.web_url)

    # -- breaking it on purpose (tests) ------------------------------------------------------
    def kill_worker(self, index: int) -> None:
        """SIGKILL worker ``index`` (1-based) and every driver and executor it launched, as when
        its machine dies."""
        from logstream.supervisor.processes import kill_process_tree

        pid = self.workers[index - 1].pid()
        if pid is not None:
            kill_process_tree(pid)
        self.workers[index - 1].pid_file.unlink(missing_ok=True)

    def restart_master(self, timeout: float = 120.0, down_s: float = 2.0) -> None:
        """Stop the master, wait ``down_s`` seconds, start it again on the same ports; it
        recovers its workers, applications and drivers from ``recovery/``."""
        ports = self._ports()
        self.master.stop()
        time.sleep(down_s)
        self._start_master(ports, timeout)

    def worker_of_pid(self, pid: int) -> int | None:
        """Which worker (1-based) launched process ``pid``, if any."""
        from logstream.supervisor.processes import process_info

        seen = set()
        while pid > 1 and pid not in seen:
            seen.add(pid)
            for index, worker in enumerate(self.workers, start=1):
                if worker.pid() == pid:
                    return index
            info = process_info(pid)
            if info is None:
                return None
            pid = info.ppid
        return None
