"""The streaming job's driver on YARN and on Kubernetes (``spark_deploy_mode=cluster``): the
:class:`~logstream.supervisor.drivers.JobDriver` interface through the ResourceManager's REST API
and through ``spark-submit --status/--kill``. YARN runs against a real ResourceManager and
NodeManager in the cluster suite (:mod:`logstream.runtime.yarn`); Kubernetes is tested at the
level of the commands it builds and the output it parses (no API server runs here)."""

from __future__ import annotations

import getpass
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from logstream.config import Settings
from logstream.errors import LogstreamError, ServiceError
from logstream.runtime.cluster import stream_app_name
from logstream.runtime.yarn import rm_list
from logstream.supervisor import processes
from logstream.supervisor.drivers import (
    DriverRef,
    JobDriver,
    Runner,
    log,
    run_command,
)
from logstream.supervisor.state import JobRecord

# -- YARN: the ResourceManager's REST API ---------------------------------------------------------

_YARN_APP = re.compile(r"\bapplication_\d+_\d+\b")
YARN_LIVE = frozenset({"NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"})


def _rm_request(url: str, method: str = "GET", body: dict | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310
        url, data=data, method=method, headers={"Accept": "application/json"}
    )
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10.0) as answer:  # noqa: S310
            return json.load(answer)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {"exception": "NotFoundException", "message": exc.read()[:300].decode()}
        raise


def resource_manager_url(settings: Settings) -> str:
    """The ResourceManager's web address: ``yarn_rm_url``, else
    ``yarn.resourcemanager.webapp.address`` (or ``yarn.resourcemanager.hostname`` on port 8088)
    of ``yarn-site.xml`` in ``YARN_CONF_DIR`` / ``HADOOP_CONF_DIR``, the files spark-submit
    reads."""
    if settings.yarn_rm_url:
        return settings.yarn_rm_url.rstrip("/")
    for variable in ("YARN_CONF_DIR", "HADOOP_CONF_DIR"):
        folder = os.environ.get(variable)
        site = Path(folder) / "yarn-site.xml" if folder else None
        if site is None or not site.is_file():
            continue
        properties = {
            (item.findtext("name") or "").strip(): (item.findtext("value") or "").strip()
            # the operator's own cluster configuration, not input from outside
            for item in ElementTree.parse(site).getroot().iter("property")  # noqa: S314
        }
        address = properties.get("yarn.resourcemanager.webapp.address", "")
        if address and "$" not in address:
            return f"http://{address}"
        host = properties.get("yarn.resourcemanager.hostname")
        if host:
            return f"http://{host}:8088"
    raise LogstreamError(
        "spark_master=yarn: cannot tell where the ResourceManager's REST API is; set "
        "yarn_rm_url (LOGSTREAM_YARN_RM_URL, e.g. http://resourcemanager:8088) or HADOOP_CONF_DIR "
        "to the folder of the cluster's yarn-site.xml"
    )


class YarnDriver(JobDriver):
    """The driver runs in YARN's ApplicationMaster (``--master yarn --deploy-mode cluster``;
    ``HADOOP_CONF_DIR`` / ``YARN_CONF_DIR`` point spark-submit at the cluster).

    The supervisor asks the ResourceManager's REST API (:func:`resource_manager_url`): the
    application's state (``GET /ws/v1/cluster/apps/<id>``), this checkpoint root's live
    applications by name (``GET /ws/v1/cluster/apps?states=...``), and the kill (``PUT
    .../apps/<id>/state`` ``{"state": "KILLED"}``, as ``user.name`` on a cluster without
    Kerberos). The application gets one attempt (``spark.yarn.maxAppAttempts=1``): restarts are
    the supervisor's, with its backoff and limits, never a second AM beside them."""

    kind = "yarn"

    def __init__(
        self,
        settings: Settings,
        http: Callable[..., dict] = _rm_request,
        user: Callable[[], str] = getpass.getuser,
    ) -> None:
        self.settings = settings
        self.http = http
        self.user = user

    @property
    def rm_url(self) -> str:
        return resource_manager_url(self.settings)

    def submit_conf(self, settings: Settings) -> dict[str, str]:
        # spark-submit returns once the ResourceManager accepted the application, which is
        # named at submission (how the list finds it)
        return {
            "spark.yarn.submit.waitAppCompletion": "false",
            "spark.yarn.maxAppAttempts": "1",
            "spark.app.name": stream_app_name(settings),
        }

    def submit(self, settings: Settings, pipelines: Sequence[str]) -> JobRecord:
        return self._submit_cluster(settings, pipelines)

    def parse_submission(self, output: str, settings: Settings, conf: dict[str, str]) -> str:
        match = _YARN_APP.search(output)
        return match.group(0) if match else ""

    def application(self, app_id: str) -> dict[str, Any] | None:
        """The ResourceManager's report of ``app_id`` (``state``, ``finalStatus``,
        ``diagnostics``, ``amHostHttpAddress``...), None when it does not know it; raises
        :class:`ServiceError` when it does not answer."""
        url = f"{self.rm_url}/ws/v1/cluster/apps/{urllib.parse.quote(app_id)}"
        try:
            answer = self.http(url)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ServiceError(
                f"the YARN ResourceManager did not answer {url}: {exc}; is it up and "
                "yarn_rm_url / HADOOP_CONF_DIR right?"
            ) from exc
        if answer.get("exception") == "NotFoundException":
            return None
        return answer.get("app", answer)

    def check(self, record: JobRecord, settings: Settings) -> tuple[DriverRef | None, str]:
        ref = DriverRef(record.driver_id, record.started_at, list(record.pipelines))
        try:
            app = self.application(record.driver_id)
        except ServiceError as exc:
            log.warning("application state unknown; YARN does not answer", extra={"error": exc})
            return ref, ""  # a ResourceManager that does not answer is no proof the job died
        if app is None:
            return None, f"YARN does not know application {record.driver_id}"
        state = str(app.get("state", ""))
        if state in YARN_LIVE:
            where = str(app.get("amHostHttpAddress", ""))
            return DriverRef(record.driver_id, record.started_at, list(record.pipelines), where), ""
        why = str(app.get("diagnostics", "")).strip().splitlines()
        return None, (
            f"the YARN application {record.driver_id} is {state} ({app.get('finalStatus', '')})"
            f"{': ' + why[0][:300] if why else ''}"
        )

    def find_running(self, settings: Settings) -> list[DriverRef]:
        url = f"{self.rm_url}/ws/v1/cluster/apps?states={','.join(sorted(YARN_LIVE))}"
        try:
            answer = self.http(url)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("cannot list YARN's applications", extra={"error": str(exc)})
            return []
        name = stream_app_name(settings)
        found = [
            DriverRef(
                str(app["id"]),
                app["startedTime"] / 1000 if app.get("startedTime") else None,
                list(processes.PIPELINES),
            )
            for app in rm_list(answer, "apps", "app")
            if app.get("name") == name and app.get("state") in YARN_LIVE
        ]
        return sorted(found, key=lambda ref: ref.started_at or 0)

    def kill(self, ref_id: int | str, settings: Settings, grace_seconds: float) -> bool:
        app_id = str(ref_id)
        query = urllib.parse.urlencode({"user.name": self.user()})
        url = f"{self.rm_url}/ws/v1/cluster/apps/{urllib.parse.quote(app_id)}/state?{query}"
        try:
            self.http(url, method="PUT", body={"state": "KILLED"})
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ServiceError(f"YARN did not accept the kill of {app_id} ({url}): {exc}") from exc
        return self._wait_gone(app_id, settings, max(grace_seconds, 10.0))


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
