"""Where the streaming job's driver runs, and how the supervisor submits, finds, asks after and
kills it there: one interface (:class:`JobDriver`), one implementation per deploy target.

* :class:`LocalDriver` (``spark_deploy_mode=client``, any master): the driver is a local
  ``spark-submit`` process, tracked by pid and command line
  (:mod:`~logstream.supervisor.processes`).
* :class:`StandaloneDriver` (``cluster`` on ``spark://``): the master runs the driver on a worker.
  It is submitted through the master's REST submission server and its state and kill go through
  the same server (``GET /v1/submissions/status/<driver>``, ``POST /v1/submissions/kill/<driver>``);
  instances nobody recorded are found among the master's active applications (``/json/``), whose
  name carries this checkpoint root's tag and the driver's id (:func:`stream_app_name`).
* :class:`~logstream.supervisor.yarn_k8s.YarnDriver` (``cluster`` on ``yarn``): the
  ResourceManager's REST API (application state, live applications by name, kill).
* :class:`~logstream.supervisor.yarn_k8s.KubernetesDriver` (``cluster`` on ``k8s://``): the driver
  pod is named by the supervisor; ``spark-submit --status/--kill <namespace>:<pod>`` (a glob finds
  unrecorded pods).

The local, standalone and YARN drivers run against real engines in the tests; the Kubernetes one
is tested at the level of the commands it builds and the output it parses.

One instance across supervising hosts: a cluster driver's record is the supervisor's (local) pid
file, but the decision "is the job running?" always asks the cluster too: a live application or
driver of this checkpoint root on the cluster means no second start, whichever host recorded it.
Airflow's ``log_stream_supervisor`` runs one run at a time (``max_active_runs=1``) and a start is
confirmed (first progress, so the application is registered) before its run ends, so the next
run, on any Celery worker, sees it on the cluster.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from logstream.config import Settings
from logstream.errors import LogstreamError, ServiceError
from logstream.runtime.cluster import stream_app_name
from logstream.supervisor import processes
from logstream.supervisor.driver_log import rotate_log
from logstream.supervisor.state import JobRecord, SupervisorPaths, write_record

log = logging.getLogger(__name__)

#: How long a cluster submission (spark-submit to the master / ResourceManager / API server) may
#: take before it counts as failed.
SUBMIT_TIMEOUT_S = 180.0
#: What ``run_command`` looks like: argv -> (exit code, combined output).
Runner = Callable[[Sequence[str]], tuple[int, str]]


@dataclass(frozen=True)
class DriverRef:
    """One running instance of the job as its deploy target names it: a pid (local), a driver id
    (``driver-...`` or, for an application only known by its id, ``app-...``: standalone), an
    application id (YARN) or ``namespace:pod`` (Kubernetes)."""

    id: int | str
    started_at: float | None = None
    pipelines: list[str] = field(default_factory=list)
    detail: str = ""  # where it runs, as the cluster says (worker, node)

    @property
    def pid(self) -> int | None:
        return self.id if isinstance(self.id, int) else None


def run_command(command: Sequence[str], timeout: float = 60.0) -> tuple[int, str]:
    """Run ``command``; its exit code and combined output (127 when the program is missing)."""
    try:
        done = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=_submit_environment(),
        )
    except FileNotFoundError as exc:
        return 127, str(exc)
    except subprocess.TimeoutExpired as exc:
        return 124, f"{shlex.join(command)} did not finish within {timeout:.0f}s: {exc}"
    return done.returncode, done.stdout + done.stderr


def _submit_environment() -> dict[str, str]:
    from logstream.runtime.java import java_home

    env = dict(os.environ)
    env.setdefault("JAVA_HOME", java_home())
    return env


class JobDriver(ABC):
    """Submit, find, ask after and kill the streaming job's driver on one deploy target."""

    kind: str = ""

    @abstractmethod
    def submit(self, settings: Settings, pipelines: Sequence[str]) -> JobRecord:
        """Start the job running ``pipelines`` and record it (the pid file)."""

    @abstractmethod
    def check(self, record: JobRecord, settings: Settings) -> tuple[DriverRef | None, str]:
        """The recorded instance if it still runs (or may: a cluster that does not answer), else
        None and why not."""

    @abstractmethod
    def find_running(self, settings: Settings) -> list[DriverRef]:
        """Every running instance on this checkpoint root, recorded or not, oldest first."""

    @abstractmethod
    def kill(self, ref_id: int | str, settings: Settings, grace_seconds: float) -> bool:
        """Stop the instance ``ref_id`` (gracefully first where the target allows); True when
        it is gone."""

    def adopt(self, ref: DriverRef, settings: Settings) -> JobRecord | None:
        """Record an instance nobody recorded (instead of starting a second one)."""
        paths = SupervisorPaths.of(settings)
        record = JobRecord(
            pid=0,
            started_at=ref.started_at or time.time(),
            proc_start=None,
            command=[],
            pipelines=list(ref.pipelines),
            checkpoint_root=settings.checkpoint_root,
            log=str(paths.log),
            log_offset=paths.log.stat().st_size if paths.log.exists() else 0,
            adopted=True,
            deploy=self.kind,
            driver_id=str(ref.id),
        )
        write_record(settings, record)
        return record

    # -- shared by the cluster drivers ----------------------------------------------------------
    def _submit_cluster(
        self, settings: Settings, pipelines: Sequence[str], runner: Runner | None = None
    ) -> JobRecord:
        """Run spark-submit in cluster mode (it returns once the cluster accepted the driver),
        its output appended to the supervisor log, and record the id :meth:`parse_submission`
        finds in that output."""
        from logstream.runtime.spark import spark_submit_command

        _check_pipelines(pipelines)
        paths = SupervisorPaths.of(settings)
        paths.root.mkdir(parents=True, exist_ok=True)
        rotate_log(paths.log)
        conf = self.submit_conf(settings)
        command = spark_submit_command(
            settings, processes.JOB_PATH, processes.job_arguments(settings, pipelines), conf
        )
        with paths.log.open("ab") as out:
            offset = out.tell()
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            out.write(f"\n==== {stamp} supervisor: submitting {shlex.join(command)}\n".encode())
        started = time.time()
        code, output = (runner or (lambda argv: run_command(argv, SUBMIT_TIMEOUT_S)))(command)
        with paths.log.open("a") as out:
            out.write(output)
        driver_id = self.parse_submission(output, settings, conf)
        if code != 0 or not driver_id:
            raise ServiceError(
                f"spark-submit did not submit the streaming job to {settings.spark_master} (exit "
                f"code {code}); its output is in {paths.log}:\n{output[-2000:]}"
            )
        record = JobRecord(
            pid=0,
            started_at=started,
            proc_start=None,
            command=command,
            pipelines=list(pipelines),
            checkpoint_root=settings.checkpoint_root,
            log=str(paths.log),
            log_offset=offset,
            deploy=self.kind,
            driver_id=driver_id,
        )
        write_record(settings, record)
        log.info("streaming job submitted", extra={"driver": driver_id, "deploy": self.kind})
        return record

    def submit_conf(self, settings: Settings) -> dict[str, str]:
        """Extra Spark configuration of a submission to this target."""
        return {}

    def parse_submission(self, output: str, settings: Settings, conf: dict[str, str]) -> str:
        """The driver's id in spark-submit's output ("" when it is not there); ``conf`` is the
        submission's :meth:`submit_conf`."""
        return ""

    def _wait_gone(self, ref_id: str, settings: Settings, timeout: float) -> bool:
        record = _probe_record(settings, self.kind, ref_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.check(record, settings)[0] is None:
                return True
            time.sleep(1.0)
        return self.check(record, settings)[0] is None


def _check_pipelines(pipelines: Sequence[str]) -> None:
    unknown = set(pipelines) - set(processes.PIPELINES)
    if unknown or not pipelines:
        raise LogstreamError(
            f"unknown pipeline(s) {sorted(unknown)}; use {', '.join(processes.PIPELINES)}"
        )


def _probe_record(settings: Settings, kind: str, driver_id: str) -> JobRecord:
    return JobRecord(
        pid=0,
        started_at=0.0,
        proc_start=None,
        command=[],
        pipelines=[],
        checkpoint_root=settings.checkpoint_root,
        log="",
        deploy=kind,
        driver_id=driver_id,
    )


# -- local: a spark-submit process on this host ---------------------------------------------------


class LocalDriver(JobDriver):
    """The driver is a detached local ``spark-submit`` process (client mode, any master)."""

    kind = "local"

    def submit(self, settings: Settings, pipelines: Sequence[str]) -> JobRecord:
        return processes.launch(settings, pipelines)

    def check(self, record: JobRecord, settings: Settings) -> tuple[DriverRef | None, str]:
        info, reason = processes.check_recorded(record, settings)
        if info is None:
            return None, reason
        return DriverRef(info.pid, record.started_at, list(record.pipelines)), ""

    def find_running(self, settings: Settings) -> list[DriverRef]:
        return [
            DriverRef(
                info.pid,
                processes.process_started_at(info),
                processes.pipelines_of(info.cmdline),
            )
            for info in processes.find_job_processes(settings)
        ]

    def kill(self, ref_id: int | str, settings: Settings, grace_seconds: float) -> bool:
        return processes.terminate(int(ref_id), grace_seconds)

    def adopt(self, ref: DriverRef, settings: Settings) -> JobRecord | None:
        info = processes.process_info(int(ref.id))
        if info is None:
            return None
        paths = SupervisorPaths.of(settings)
        record = JobRecord(
            pid=info.pid,
            started_at=ref.started_at or time.time(),
            proc_start=info.start_ticks,
            command=list(info.cmdline),
            pipelines=list(ref.pipelines),
            checkpoint_root=settings.checkpoint_root,
            log=str(paths.log),
            log_offset=paths.log.stat().st_size if paths.log.exists() else 0,
            adopted=True,
        )
        write_record(settings, record)
        return record


# -- Spark standalone: the master's REST submission server and JSON state -------------------------

#: Driver states (Spark's DriverState) in which a driver runs or will run again.
STANDALONE_LIVE = frozenset({"SUBMITTED", "RUNNING", "RELAUNCHING", "UNKNOWN"})
_DRIVER_ID = re.compile(r"\bdriver-\d{14}-\d{4,}\b")


def _http_json(url: str, method: str = "GET", timeout: float = 5.0) -> dict[str, Any]:
    data = b"" if method == "POST" else None
    request = urllib.request.Request(url, method=method, data=data)  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
        return json.load(answer)


class StandaloneDriver(JobDriver):
    """The driver runs on a standalone cluster's worker (cluster deploy mode).

    ``rest_url`` is the master's REST submission server, ``web_url`` its web UI (``/json/``);
    both default from ``spark_rest_url`` / ``spark_master`` (ports 6066 and 8080)."""

    kind = "standalone"

    def __init__(self, settings: Settings, http: Callable[..., dict] = _http_json) -> None:
        host = settings.spark_master.split("://", 1)[-1].split(",")[0].rsplit(":", 1)[0]
        self.rest_url = (settings.spark_rest_url or f"http://{host}:6066").rstrip("/")
        self.web_url = (settings.spark_master_ui_url or f"http://{host}:8080").rstrip("/")
        self.http = http

    def submit(self, settings: Settings, pipelines: Sequence[str]) -> JobRecord:
        return self._submit_cluster(settings, pipelines)

    def parse_submission(self, output: str, settings: Settings, conf: dict[str, str]) -> str:
        match = re.search(r'"submissionId"\s*:\s*"([^"]+)"', output) or _DRIVER_ID.search(output)
        if match is None:
            return ""
        return match.group(1) if match.groups() else match.group(0)

    def driver_status(self, driver_id: str) -> dict[str, Any]:
        """The REST server's answer about ``driver_id`` (``driverState``, ``workerHostPort``,
        ``message``); raises :class:`ServiceError` when the master does not answer."""
        url = f"{self.rest_url}/v1/submissions/status/{urllib.parse.quote(driver_id)}"
        try:
            return self.http(url)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ServiceError(
                f"the Spark master's REST server did not answer {url}: {exc}; is the master up "
                "and spark_rest_url right?"
            ) from exc

    def active_apps(self) -> list[dict[str, Any]]:
        """The master's active applications (``/json/``); raises :class:`ServiceError`."""
        try:
            state = self.http(f"{self.web_url}/json/")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ServiceError(
                f"the Spark master at {self.web_url} did not answer /json/: {exc}; is the master "
                "up and spark_master_ui_url right?"
            ) from exc
        return list(state.get("activeapps", []))

    def check(self, record: JobRecord, settings: Settings) -> tuple[DriverRef | None, str]:
        if record.checkpoint_root != settings.checkpoint_root:
            return None, f"the record is of checkpoint root {record.checkpoint_root}"
        driver_id = record.driver_id
        ref = DriverRef(driver_id, record.started_at, list(record.pipelines))
        if driver_id.startswith("app-"):
            try:
                apps = {app.get("id"): app for app in self.active_apps()}
            except ServiceError:
                return ref, ""  # a master that does not answer is no proof the job died
            if driver_id in apps:
                return ref, ""
            return None, f"the application {driver_id} is no longer active on the master"
        try:
            status = self.driver_status(driver_id)
        except ServiceError as exc:
            log.warning("driver state unknown; the master does not answer", extra={"error": exc})
            return ref, ""
        state = str(status.get("driverState", "UNKNOWN"))
        if status.get("success") is False and "driverState" not in status:
            if status.get("message"):
                # a master that is not ALIVE (standby, recovering) answers with an exception
                log.warning("the master cannot tell the driver state", extra={"driver": driver_id})
                return ref, ""
            return None, f"the master does not know driver {driver_id} (any more)"
        if state in STANDALONE_LIVE:
            worker = status.get("workerHostPort", "")
            return DriverRef(driver_id, record.started_at, list(record.pipelines), worker), ""
        message = (status.get("message") or "").strip().splitlines()
        why = f": {message[0][:300]}" if message else ""
        return None, f"the driver {driver_id} is {state} on the cluster{why}"

    def find_running(self, settings: Settings) -> list[DriverRef]:
        prefix = stream_app_name(settings)
        try:
            apps = self.active_apps()
        except ServiceError as exc:
            log.warning("cannot list the master's applications", extra={"error": exc})
            return []
        found = []
        for app in apps:
            name = str(app.get("name", ""))
            if name != prefix and not name.startswith(prefix + " "):
                continue
            if app.get("state") not in (None, "RUNNING", "WAITING", "SUBMITTED"):
                continue
            driver_id = name[len(prefix) :].strip() or str(app.get("id"))
            if driver_id.startswith("driver-") and not self._driver_live(driver_id):
                continue  # the driver is gone; the master has not removed its application yet
            started = app.get("starttime")
            found.append(
                DriverRef(driver_id, started / 1000 if started else None, list(processes.PIPELINES))
            )
        return sorted(found, key=lambda ref: ref.started_at or 0)

    def _driver_live(self, driver_id: str) -> bool:
        """Whether the REST server says ``driver_id`` runs (or cannot say: no proof it died)."""
        try:
            status = self.driver_status(driver_id)
        except ServiceError:
            return True
        if "driverState" not in status:
            return bool(status.get("message"))
        return status["driverState"] in STANDALONE_LIVE

    def kill(self, ref_id: int | str, settings: Settings, grace_seconds: float) -> bool:
        ref_id = str(ref_id)
        if ref_id.startswith("app-"):
            url = f"{self.web_url}/app/kill/?id={urllib.parse.quote(ref_id)}&terminate=true"
        else:
            url = f"{self.rest_url}/v1/submissions/kill/{urllib.parse.quote(ref_id)}"
        try:
            self.http(url, method="POST")
        except ValueError:
            pass  # the UI's kill answers with a redirect page, not JSON
        except (urllib.error.URLError, OSError) as exc:
            raise ServiceError(f"the Spark master did not accept {url}: {exc}") from exc
        return self._wait_gone(ref_id, settings, max(grace_seconds, 10.0))
