"""The streaming job's driver on YARN and on Kubernetes (``spark_deploy_mode=cluster``): the
:class:`~logstream.supervisor.drivers.JobDriver` interface through the ``yarn`` CLI and through
``spark-submit --status/--kill``. Tested at the level of the commands they build and the output
they parse; no ResourceManager or Kubernetes API server runs here."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from logstream.config import Settings
from logstream.errors import ServiceError
from logstream.runtime.cluster import stream_app_name
from logstream.supervisor import processes
from logstream.supervisor.drivers import (
    DriverRef,
    JobDriver,
    Runner,
    log,
    run_command,
)
from logstream.supervisor.state import JobRecord

# -- YARN: the ResourceManager through the yarn CLI -----------------------------------------------

_YARN_APP = re.compile(r"\bapplication_\d+_\d+\b")
YARN_LIVE = frozenset({"NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"})


class YarnDriver(JobDriver):
    """The driver runs in YARN's ApplicationMaster (``--master yarn --deploy-mode cluster``).
    The application is found with ``yarn application -list`` by its name, asked after with
    ``-status`` and stopped with ``-kill`` (``HADOOP_CONF_DIR`` / ``YARN_CONF_DIR`` must point at
    the cluster, as for spark-submit)."""

    kind = "yarn"

    def __init__(self, runner: Runner = run_command, yarn: str = "yarn") -> None:
        self.runner = runner
        self.yarn = yarn

    def submit_conf(self, settings: Settings) -> dict[str, str]:
        # spark-submit returns once the ResourceManager accepted the application, which is
        # named at submission (what -list finds)
        return {
            "spark.yarn.submit.waitAppCompletion": "false",
            "spark.app.name": stream_app_name(settings),
        }

    def submit(self, settings: Settings, pipelines: Sequence[str]) -> JobRecord:
        return self._submit_cluster(settings, pipelines, self.runner)

    def parse_submission(self, output: str, settings: Settings, conf: dict[str, str]) -> str:
        match = _YARN_APP.search(output)
        return match.group(0) if match else ""

    def status_command(self, app_id: str) -> list[str]:
        return [self.yarn, "application", "-status", app_id]

    def kill_command(self, app_id: str) -> list[str]:
        return [self.yarn, "application", "-kill", app_id]

    def list_command(self) -> list[str]:
        states = "NEW,NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING"
        return [self.yarn, "application", "-list", "-appStates", states]

    @staticmethod
    def parse_status(output: str) -> dict[str, str]:
        """``yarn application -status``'s report as {field: value} (``State``, ``Final-State``,
        ``Diagnostics``...)."""
        report = {}
        for line in output.splitlines():
            key, sep, value = line.partition(" : ")
            if sep:
                report[key.strip()] = value.strip()
        return report

    def check(self, record: JobRecord, settings: Settings) -> tuple[DriverRef | None, str]:
        code, output = self.runner(self.status_command(record.driver_id))
        report = self.parse_status(output)
        if code != 0 or "State" not in report:
            if "doesn't exist" in output or "not found" in output.lower():
                return None, f"YARN does not know application {record.driver_id}"
            return DriverRef(record.driver_id, record.started_at, list(record.pipelines)), ""
        if report["State"] in YARN_LIVE:
            return DriverRef(record.driver_id, record.started_at, list(record.pipelines)), ""
        why = report.get("Diagnostics", "")[:300]
        return None, (
            f"the YARN application {record.driver_id} is {report['State']} "
            f"({report.get('Final-State', '')}){': ' + why if why else ''}"
        )

    @staticmethod
    def parse_list(output: str, name: str) -> list[str]:
        """Application ids of ``yarn application -list`` rows whose name is ``name``."""
        found = []
        for line in output.splitlines():
            columns = [column.strip() for column in line.split("\t")]
            if len(columns) > 1 and _YARN_APP.fullmatch(columns[0]) and columns[1] == name:
                found.append(columns[0])
        return found

    def find_running(self, settings: Settings) -> list[DriverRef]:
        code, output = self.runner(self.list_command())
        if code != 0:
            log.warning("yarn application -list failed", extra={"output": output[-500:]})
            return []
        ids = self.parse_list(output, stream_app_name(settings))
        return [DriverRef(app_id, None, list(processes.PIPELINES)) for app_id in sorted(ids)]

    def kill(self, ref_id: int | str, settings: Settings, grace_seconds: float) -> bool:
        code, output = self.runner(self.kill_command(str(ref_id)))
        if code != 0 and "already" not in output:
            raise ServiceError(f"yarn could not kill {ref_id}: {output[-500:]}")
        return self._wait_gone(str(ref_id), settings, grace_seconds)


# -- Kubernetes: the driver pod through spark-submit --status/--kill ------------------------------

K8S_LIVE = frozenset({"Pending", "Running", "Unknown"})


class KubernetesDriver(JobDriver):
    """The driver runs in a pod (``--master k8s://https://... --deploy-mode cluster``); the
    supervisor names the pod (``spark.kubernetes.driver.pod.name``) so it knows it without
    parsing, and asks after and kills it with ``spark-submit --status/--kill namespace:pod``; a
    glob (``namespace:logstream-stream-<tag>-*``) finds pods nobody recorded."""

    kind = "k8s"

    def __init__(
        self, runner: Runner = run_command, clock: Callable[[], float] = time.time
    ) -> None:
        self.runner = runner
        self.clock = clock

    def pod_prefix(self, settings: Settings) -> str:
        return stream_app_name(settings)

    def submit_conf(self, settings: Settings) -> dict[str, str]:
        pod = f"{self.pod_prefix(settings)}-{int(self.clock())}"
        return {
            "spark.kubernetes.namespace": settings.spark_k8s_namespace,
            "spark.kubernetes.driver.pod.name": pod,
            "spark.kubernetes.submission.waitAppCompletion": "false",
            "spark.app.name": stream_app_name(settings),
        }

    def submit(self, settings: Settings, pipelines: Sequence[str]) -> JobRecord:
        return self._submit_cluster(settings, pipelines, self.runner)

    def parse_submission(self, output: str, settings: Settings, conf: dict[str, str]) -> str:
        """``namespace:pod`` of the pod the submission named, once spark-submit reported it."""
        pod = conf["spark.kubernetes.driver.pod.name"]
        return f"{conf['spark.kubernetes.namespace']}:{pod}" if pod in output else ""

    def spark_submit(self, settings: Settings, action: str, target: str) -> list[str]:
        from logstream.runtime.jars import spark_home

        binary = str(spark_home() / "bin" / "spark-submit")
        return [binary, "--master", settings.spark_master, f"--{action}", target]

    @staticmethod
    def parse_phases(output: str) -> dict[str, str]:
        """{pod name: phase} from ``spark-submit --status``'s pod reports."""
        phases: dict[str, str] = {}
        pod = ""
        for line in output.splitlines():
            line = line.strip()
            if line.startswith("pod name:"):
                pod = line.split(":", 1)[1].strip()
            elif line.startswith("phase:") and pod:
                phases[pod] = line.split(":", 1)[1].strip()
        return phases

    def check(self, record: JobRecord, settings: Settings) -> tuple[DriverRef | None, str]:
        code, output = self.runner(self.spark_submit(settings, "status", record.driver_id))
        pod = record.driver_id.split(":", 1)[-1]
        phase = self.parse_phases(output).get(pod)
        ref = DriverRef(record.driver_id, record.started_at, list(record.pipelines))
        if phase is None:
            if code == 0 or "not found" in output.lower():
                return None, f"the driver pod {record.driver_id} does not exist"
            return ref, ""  # the API server did not answer: no proof the pod is gone
        if phase in K8S_LIVE:
            return ref, ""
        return None, f"the driver pod {record.driver_id} is {phase}"

    def find_running(self, settings: Settings) -> list[DriverRef]:
        target = f"{settings.spark_k8s_namespace}:{self.pod_prefix(settings)}-*"
        _code, output = self.runner(self.spark_submit(settings, "status", target))
        return [
            DriverRef(f"{settings.spark_k8s_namespace}:{pod}", None, list(processes.PIPELINES))
            for pod, phase in sorted(self.parse_phases(output).items())
            if phase in K8S_LIVE
        ]

    def kill(self, ref_id: int | str, settings: Settings, grace_seconds: float) -> bool:
        code, output = self.runner(self.spark_submit(settings, "kill", str(ref_id)))
        if code != 0:
            raise ServiceError(f"spark-submit --kill {ref_id} failed: {output[-500:]}")
        return self._wait_gone(str(ref_id), settings, grace_seconds)
