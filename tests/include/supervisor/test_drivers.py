"""Where the job's driver runs: which implementation a setting picks, the spark-submit command of a
cluster submission, and how each cluster driver reads the cluster's answers. The standalone driver
runs against a real cluster in tests/cluster; YARN and Kubernetes cannot run here, so their
commands and the parsing of their output are checked against the tools' documented formats."""

from __future__ import annotations

import urllib.error

import pytest

from logstream.errors import LogstreamError
from logstream.runtime.cluster import checkpoint_tag, stream_app_name
from logstream.runtime.jars import udf_jar
from logstream.runtime.spark import spark_submit_command
from logstream.supervisor.deploy import driver_for
from logstream.supervisor.drivers import LocalDriver, StandaloneDriver
from logstream.supervisor.processes import JOB_PATH
from logstream.supervisor.state import JobRecord
from logstream.supervisor.yarn_k8s import KubernetesDriver, YarnDriver, resource_manager_url


def record(run, driver_id: str, kind: str) -> JobRecord:
    return JobRecord(
        pid=0,
        started_at=1.0,
        proc_start=None,
        command=[],
        pipelines=["logs"],
        checkpoint_root=run.checkpoint_root,
        log="",
        deploy=kind,
        driver_id=driver_id,
    )


@pytest.mark.parametrize(
    ("mode", "master", "kind"),
    [
        ("client", "spark://10.0.0.5:7077", LocalDriver),
        ("cluster", "local[2]", LocalDriver),
        ("cluster", "spark://10.0.0.5:7077", StandaloneDriver),
        ("cluster", "yarn", YarnDriver),
        ("cluster", "k8s://https://10.0.0.1:6443", KubernetesDriver),
    ],
)
def test_the_deploy_mode_and_master_pick_the_driver(run, mode, master, kind):
    assert isinstance(driver_for(run.replace(spark_deploy_mode=mode, spark_master=master)), kind)


def test_an_unknown_deploy_mode_or_cluster_is_refused(run):
    with pytest.raises(LogstreamError, match="client or cluster"):
        driver_for(run.replace(spark_deploy_mode="remote"))
    with pytest.raises(LogstreamError, match="spark://, yarn or k8s://"):
        driver_for(run.replace(spark_deploy_mode="cluster", spark_master="mesos://m:5050"))


def test_standalone_cluster_submission_runs_the_python_file_through_python_runner(run):
    settings = run.replace(
        spark_master="spark://10.0.0.5:7077",
        spark_deploy_mode="cluster",
        spark_rest_url="http://10.0.0.5:6066",
        spark_cores_max=2,
    )
    command = spark_submit_command(settings, JOB_PATH, ["--pipelines", "logs"])
    assert command[command.index("--master") + 1] == "spark://10.0.0.5:6066"
    assert command[command.index("--deploy-mode") + 1] == "cluster"
    assert command[command.index("--class") + 1] == "org.apache.spark.deploy.PythonRunner"
    # PythonRunner's arguments: the Python file, the --py-files list, the job's arguments
    assert command[-5:] == [str(udf_jar(settings)), str(JOB_PATH), "", "--pipelines", "logs"]
    conf = [command[i + 1] for i, arg in enumerate(command) if arg == "--conf"]
    assert "spark.driver.supervise=false" in conf
    assert "spark.cores.max=2" in conf
    # a driver on another host must not bind to this host's loopback
    assert not any(c.startswith(("spark.driver.host=", "spark.driver.bindAddress=")) for c in conf)


def test_the_rest_server_defaults_to_the_masters_host(run):
    settings = run.replace(spark_master="spark://10.0.0.5:7077", spark_deploy_mode="cluster")
    command = spark_submit_command(settings, JOB_PATH, [])
    assert command[command.index("--master") + 1] == "spark://10.0.0.5:6066"


def test_yarn_and_kubernetes_submit_the_python_file_itself(run):
    for master in ("yarn", "k8s://https://10.0.0.1:6443"):
        settings = run.replace(spark_master=master, spark_deploy_mode="cluster")
        command = spark_submit_command(settings, JOB_PATH, ["--pipelines", "logs"])
        assert "--class" not in command
        assert command[command.index("--deploy-mode") + 1] == "cluster"
        assert command[-3:] == [str(JOB_PATH), "--pipelines", "logs"]


def test_client_mode_command_is_unchanged(run):
    command = spark_submit_command(run.replace(spark_master="local[2]"), JOB_PATH, ["x"])
    assert "--deploy-mode" not in command and command[-2:] == [str(JOB_PATH), "x"]
    assert "spark.driver.host=127.0.0.1" in command


def test_the_application_name_tags_the_checkpoint_root_and_driver(run):
    other = run.replace(checkpoint_root=run.checkpoint_root + "-b")
    assert checkpoint_tag(run) != checkpoint_tag(other)
    assert stream_app_name(run) == f"logstream-stream-{checkpoint_tag(run)}"
    assert stream_app_name(run, "driver-20261207065236-0000").endswith(
        " driver-20261207065236-0000"
    )


# -- standalone: the REST submission server and the master's JSON ---------------------------------

#: What spark-submit printed for a real cluster-mode submission to Spark 4.1.3's REST server.
REST_SUBMIT_OUTPUT = """\
INFO RestSubmissionClient: Submission successfully created as driver-20261207065236-0000. Polling
INFO RestSubmissionClient: Server responded with CreateSubmissionResponse:
{
  "action" : "CreateSubmissionResponse",
  "message" : "Driver successfully submitted as driver-20261207065236-0000",
  "serverSparkVersion" : "4.1.3",
  "submissionId" : "driver-20261207065236-0000",
  "success" : true
}
"""


class FakeMaster:
    """The answers of a standalone master's REST server and web UI, by URL."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str]] = []

    def __call__(self, url: str, method: str = "GET", timeout: float = 5.0, body=None) -> dict:
        self.asked.append((method, url))
        for suffix, answer in self.answers.items():
            if url.endswith(suffix) or suffix in url:
                if isinstance(answer, Exception):
                    raise answer
                return answer  # type: ignore[return-value]
        raise urllib.error.URLError("connection refused")


def standalone(run, answers):
    settings = run.replace(
        spark_master="spark://127.0.0.1:7077",
        spark_deploy_mode="cluster",
        spark_rest_url="http://127.0.0.1:6066",
        spark_master_ui_url="http://127.0.0.1:8080",
    )
    master = FakeMaster(answers)
    return settings, StandaloneDriver(settings, http=master), master


def test_standalone_reads_the_driver_id_from_the_submission(run):
    settings, driver, _ = standalone(run, {})
    found = driver.parse_submission(REST_SUBMIT_OUTPUT, settings, {})
    assert found == "driver-20261207065236-0000"
    assert driver.parse_submission("Exception in thread main", settings, {}) == ""


def test_standalone_driver_states(run):
    running = {"driverState": "RUNNING", "workerHostPort": "127.0.0.1:4711", "success": True}
    failed = {
        "driverState": "FAILED",
        "success": True,
        "message": "Exception from the cluster:\njava.lang.RuntimeException: boom",
    }
    recovering = {
        "success": False,
        "message": "Exception from the cluster:\norg.apache.spark.SparkException: Current state "
        "is not alive: RECOVERING. Can only request driver status in ALIVE state.",
    }
    answers = {
        "status/driver-1": running,
        "status/driver-2": failed,
        "status/driver-4": recovering,
        "status/driver-5": {"success": False, "action": "SubmissionStatusResponse"},
    }
    settings, driver, master = standalone(run, answers)
    ref, why = driver.check(record(settings, "driver-1", "standalone"), settings)
    assert ref is not None and ref.detail == "127.0.0.1:4711" and why == ""
    assert master.asked[-1] == ("GET", "http://127.0.0.1:6066/v1/submissions/status/driver-1")
    ref, why = driver.check(record(settings, "driver-2", "standalone"), settings)
    assert ref is None and "FAILED" in why and "Exception from the cluster" in why
    # a master that does not answer (restarting) is no proof that the driver died
    ref, why = driver.check(record(settings, "driver-3", "standalone"), settings)
    assert ref is not None and why == ""
    # nor is one that is recovering (Spark answers "not found" with an exception then) ...
    ref, why = driver.check(record(settings, "driver-4", "standalone"), settings)
    assert ref is not None and why == ""
    # ... but a live master that does not know the driver is
    ref, why = driver.check(record(settings, "driver-5", "standalone"), settings)
    assert ref is None and "does not know driver driver-5" in why
    # a record of another checkpoint root is not this job
    ref, why = driver.check(
        record(run, "driver-1", "standalone"), settings.replace(checkpoint_root="/x")
    )
    assert ref is None and "checkpoint root" in why


def test_standalone_finds_this_checkpoints_applications_on_the_master(run):
    settings, driver, _ = standalone(run, {})
    ours = stream_app_name(settings)
    apps = [
        {"id": "app-2", "name": f"{ours} driver-20261207070000-0001", "state": "RUNNING",
         "starttime": 2_000},
        {"id": "app-1", "name": ours, "state": "RUNNING", "starttime": 1_000},
        {"id": "app-3", "name": "logstream-stream-000000000000", "state": "RUNNING"},
        {"id": "app-4", "name": "something else", "state": "RUNNING"},
    ]  # fmt: skip
    settings, driver, _ = standalone(run, {"/json/": {"activeapps": apps}})
    assert [ref.id for ref in driver.find_running(settings)] == [
        "app-1",
        "driver-20261207070000-0001",
    ]
    # an application whose driver the master already reports dead is not a running instance
    killed = {"driverState": "KILLED", "success": True}
    answers = {"/json/": {"activeapps": apps}, "status/driver-20261207070000-0001": killed}
    settings, driver, _ = standalone(run, answers)
    assert [ref.id for ref in driver.find_running(settings)] == ["app-1"]


def test_standalone_kill_goes_through_the_rest_server(run):
    killed = {"success": True, "action": "KillSubmissionResponse"}
    gone = {"driverState": "KILLED", "success": True}
    settings, driver, master = standalone(run, {"kill/driver-1": killed, "status/driver-1": gone})
    assert driver.kill("driver-1", settings, 0)
    assert ("POST", "http://127.0.0.1:6066/v1/submissions/kill/driver-1") in master.asked


class Commands:
    """Answers (exit code, output) to the commands a driver runs, by their first differing word."""

    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers = answers
        self.ran: list[list[str]] = []

    def __call__(self, command) -> tuple[int, str]:
        self.ran.append(list(command))
        for word, answer in self.answers.items():
            if word in command:
                return answer
        return 1, "unexpected command"


# -- YARN -----------------------------------------------------------------------------------------

#: the ResourceManager's answers in the shape of Hadoop's REST API documentation
#: (ResourceManagerRest: "Cluster Application API", "Cluster Applications API")
YARN_APP = {
    "app": {
        "id": "application_1700000000000_0007",
        "name": "logstream-stream-0123456789ab",
        "state": "RUNNING",
        "finalStatus": "UNDEFINED",
        "diagnostics": "",
        "startedTime": 1700000000123,
        "amHostHttpAddress": "node-3:8042",
    }
}


def yarn_app(**fields) -> dict:
    return {"app": {**YARN_APP["app"], **fields}}


def test_yarn_asks_the_resource_managers_rest_api(run):
    settings = run.replace(
        spark_master="yarn", spark_deploy_mode="cluster", yarn_rm_url="http://rm:8088/"
    )
    name = stream_app_name(settings)
    running = yarn_app(name=name, state="RUNNING", finalStatus="UNDEFINED")
    listed = {
        "apps": {
            "app": [
                running["app"],
                yarn_app(id="application_1700000000000_0008", name="other-job")["app"],
            ]
        }
    }
    master = FakeMaster({"/apps/application_1700000000000_0007": running, "/apps?states=": listed})
    yarn = YarnDriver(settings, http=master, user=lambda: "etl")
    ref, _ = yarn.check(record(settings, "application_1700000000000_0007", "yarn"), settings)
    assert ref is not None and ref.detail == "node-3:8042"
    assert master.asked[-1] == (
        "GET",
        "http://rm:8088/ws/v1/cluster/apps/application_1700000000000_0007",
    )
    found = yarn.find_running(settings)
    assert [(r.id, r.started_at) for r in found] == [
        ("application_1700000000000_0007", 1700000000.123)
    ]
    assert "states=ACCEPTED,NEW,NEW_SAVING,RUNNING,SUBMITTED" in master.asked[-1][1]

    failed = yarn_app(state="FAILED", finalStatus="FAILED", diagnostics="AM container exited\n...")
    yarn = YarnDriver(settings, http=FakeMaster({"/apps/": failed}))
    ref, why = yarn.check(record(settings, "application_1700000000000_0007", "yarn"), settings)
    assert ref is None and "FAILED" in why and "AM container exited" in why
    gone = {"exception": "NotFoundException", "message": "app with id: x not found"}
    yarn = YarnDriver(settings, http=FakeMaster({"/apps/": gone}))
    ref, why = yarn.check(record(settings, "application_1700000000000_0007", "yarn"), settings)
    assert ref is None and "does not know" in why
    silent = YarnDriver(settings, http=FakeMaster({}))
    ref, _ = silent.check(record(settings, "application_1700000000000_0007", "yarn"), settings)
    assert ref is not None, "a ResourceManager that does not answer is no proof the job died"

    assert yarn.submit_conf(settings) == {
        "spark.yarn.submit.waitAppCompletion": "false",
        "spark.yarn.maxAppAttempts": "1",
        "spark.app.name": name,
    }
    out = "INFO Client: Submitted application application_1700000000000_0009"
    assert yarn.parse_submission(out, settings, {}) == "application_1700000000000_0009"


def test_yarn_kill_puts_the_killed_state(run):
    settings = run.replace(
        spark_master="yarn", spark_deploy_mode="cluster", yarn_rm_url="http://rm:8088"
    )
    asked: list[tuple[str, str, dict | None]] = []

    def http(url, method="GET", body=None):
        asked.append((method, url, body))
        return yarn_app(state="KILLED" if len(asked) > 1 else "RUNNING", finalStatus="KILLED")

    assert YarnDriver(settings, http=http, user=lambda: "etl").kill("application_1_2", settings, 0)
    assert asked[0] == (
        "PUT",
        "http://rm:8088/ws/v1/cluster/apps/application_1_2/state?user.name=etl",
        {"state": "KILLED"},
    )


def test_the_resource_manager_is_found_in_hadoop_conf_dir(run, tmp_path, monkeypatch):
    settings = run.replace(spark_master="yarn", spark_deploy_mode="cluster")
    monkeypatch.delenv("YARN_CONF_DIR", raising=False)
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    with pytest.raises(LogstreamError, match="yarn_rm_url"):
        resource_manager_url(settings)
    site = tmp_path / "yarn-site.xml"
    site.write_text(
        "<configuration><property><name>yarn.resourcemanager.hostname</name>"
        "<value>rm.example</value></property></configuration>"
    )
    assert resource_manager_url(settings) == "http://rm.example:8088"
    site.write_text(
        "<configuration><property><name>yarn.resourcemanager.webapp.address</name>"
        "<value>10.1.2.3:18088</value></property></configuration>"
    )
    assert resource_manager_url(settings) == "http://10.1.2.3:18088"
    assert resource_manager_url(settings.replace(yarn_rm_url="http://x:1/")) == "http://x:1"


# -- Kubernetes -----------------------------------------------------------------------------------

K8S_STATUS = """\
Application status (driver):
\t pod name: {pod}
\t namespace: logs
\t labels: spark-app-selector -> spark-123, spark-role -> driver
\t phase: {phase}
"""


def test_kubernetes_names_the_pod_and_reads_its_phase(run):
    settings = run.replace(
        spark_master="k8s://https://10.0.0.1:6443", spark_deploy_mode="cluster",
        spark_k8s_namespace="logs",
    )  # fmt: skip
    k8s = KubernetesDriver(runner=Commands({}), clock=lambda: 1_800_000_000.0)
    conf = k8s.submit_conf(settings)
    pod = f"{stream_app_name(settings)}-1800000000"
    assert conf["spark.kubernetes.driver.pod.name"] == pod
    assert conf["spark.kubernetes.namespace"] == "logs"
    assert conf["spark.kubernetes.submission.waitAppCompletion"] == "false"
    assert k8s.parse_submission(f"pod name: {pod}\nphase: Pending", settings, conf) == f"logs:{pod}"

    commands = Commands({"--status": (0, K8S_STATUS.format(pod=pod, phase="Running"))})
    k8s = KubernetesDriver(runner=commands)
    ref, _ = k8s.check(record(settings, f"logs:{pod}", "k8s"), settings)
    assert ref is not None
    assert commands.ran[-1][-2:] == ["--status", f"logs:{pod}"]
    assert commands.ran[-1][commands.ran[-1].index("--master") + 1] == settings.spark_master
    assert [r.id for r in k8s.find_running(settings)] == [f"logs:{pod}"]
    assert commands.ran[-1][-1] == f"logs:{stream_app_name(settings)}-*"

    k8s = KubernetesDriver(
        runner=Commands({"--status": (0, K8S_STATUS.format(pod=pod, phase="Failed"))})
    )
    ref, why = k8s.check(record(settings, f"logs:{pod}", "k8s"), settings)
    assert ref is None and "Failed" in why
