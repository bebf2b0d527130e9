"""The streaming job supervised on YARN (a ResourceManager and a NodeManager on loopback,
:mod:`logstream.runtime.yarn`), its driver in the ApplicationMaster (``--master yarn
--deploy-mode cluster``), the tables, checkpoints and status files on HDFS:

* the supervisor submits it and follows it through the ResourceManager's REST API;
* the ApplicationMaster's JVM is SIGKILLed: YARN fails the application (one attempt), the
  supervisor learns it from the ResourceManager and restarts the job from its checkpoints;
* the operator's stop is the ResourceManager's kill; one ``--available-now`` run on YARN lands the
  rest.

Afterwards every event landed exactly once and the metric tables and look-back anomalies equal
the independent oracle's (:mod:`tests.oracle`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logstream.config import Settings
from logstream.runtime.jars import spark_home
from logstream.runtime.spark import spark_submit_command
from logstream.runtime.yarn import LocalYarn
from logstream.supervisor import inspect, start_job, stop_job
from logstream.supervisor.drivers import run_command
from logstream.supervisor.processes import JOB_PATH, job_arguments, process_info
from logstream.supervisor.yarn_k8s import YARN_LIVE, YarnDriver
from tests.cluster import support
from tests.cluster.support import sigkill, supervised_stream, watch_until_restart
from tests.exactly_once import assert_exactly_once
from tests.helpers import produce_with_ids

pytestmark = pytest.mark.cluster

AM_CLASS = "org.apache.spark.deploy.yarn.ApplicationMaster"
PROGRESS_TIMEOUT_S = 900


@pytest.fixture
def on_yarn(settings, local_yarn, remote_storage, monkeypatch, tmp_path) -> Settings:
    """Settings of a job whose driver runs in YARN's ApplicationMaster, its roots on HDFS.

    spark-submit reaches the cluster through ``HADOOP_CONF_DIR``; its ``spark-defaults.conf``
    (``SPARK_CONF_DIR``) names pyspark's jars as already on every node (``spark.yarn.jars`` with
    ``local:``), as a team's defaults name an archive on HDFS, so no submission uploads them."""
    for key, value in local_yarn.environment().items():
        monkeypatch.setenv(key, value)
    conf_dir = tmp_path / "spark-conf"
    conf_dir.mkdir()
    (conf_dir / "spark-defaults.conf").write_text(
        f"spark.yarn.jars local:{spark_home() / 'jars'}/*\n"
    )
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf_dir))
    root = remote_storage.root("hdfs", f"yarn-{tmp_path.name}")
    return remote_storage.settings(settings).replace(
        spark_master="yarn",
        spark_deploy_mode="cluster",
        yarn_rm_url=local_yarn.rm_url,
        spark_driver_memory="1g",
        spark_executor_memory="768m",
        spark_executor_cores=1,
        state_dir=tmp_path / "state",
        data_root=f"{root}/data",
        checkpoint_root=f"{root}/checkpoints",
        status_dir=f"{root}/status",
        alert_sink=f"jsonl:{tmp_path / 'alerts.jsonl'}",
        metrics_port=0,
    )


def am_jvm(app_id: str) -> int | None:
    """The pid of the ApplicationMaster's JVM (the driver) of ``app_id``, if it runs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        info = process_info(int(entry.name))
        if info is None or not info.alive or AM_CLASS not in " ".join(info.cmdline):
            continue
        try:
            if app_id in os.readlink(entry / "cwd"):
                return info.pid
        except OSError:
            continue
    return None


def container_output(yarn: LocalYarn, app_id: str, lines: int = 40) -> str:
    """The last lines of every container's stdout/stderr of ``app_id``."""
    found = []
    for path in sorted((yarn.container_logs / app_id).glob("*/std*")):
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        found.append(f"--- {path}\n" + "\n".join(tail))
    return "\n".join(found) or f"(no container output of {app_id} under {yarn.container_logs})"


def wait_for_valid(run: Settings, yarn: LocalYarn, minimum: int, what: str) -> None:
    support.wait_for_valid(
        run, minimum, what, lambda app: container_output(yarn, app), PROGRESS_TIMEOUT_S
    )


def test_exactly_once_on_yarn_through_an_application_master_kill(
    spark, kafka_broker, local_yarn, on_yarn
):
    topic = "yarn-logs"
    run, records = supervised_stream(on_yarn, topic, 6_000, 7, kafka_broker)
    half = len(records) // 2
    valid_first = sum(r.truth is not None for r in records[:half])
    ids = produce_with_ids(kafka_broker.bootstrap, records[:half])

    started = start_job(run, ["logs"])
    assert started.action == "started" and started.driver_id.startswith("application_"), started
    wait_for_valid(run, local_yarn, valid_first // 2, "first start")
    yarn = YarnDriver(run)
    assert yarn.application(started.driver_id)["state"] == "RUNNING"
    assert [ref.id for ref in yarn.find_running(run)] == [started.driver_id]

    jvm = am_jvm(started.driver_id)
    assert jvm is not None, container_output(local_yarn, started.driver_id)
    sigkill(jvm)
    restart_s = watch_until_restart(run, 0, 300)
    failed = yarn.application(started.driver_id)
    assert failed["state"] not in YARN_LIVE, failed  # one attempt: YARN did not start a second AM
    again = inspect(run)
    assert again.driver_id not in ("", started.driver_id), again
    ids += produce_with_ids(kafka_broker.bootstrap, records[half:])
    wait_for_valid(run, local_yarn, valid_first + 1, "after the ApplicationMaster kill")

    stopped = stop_job(run, grace_seconds=60)
    assert stopped.action == "stopped", stopped
    assert yarn.application(again.driver_id)["state"] == "KILLED"
    assert yarn.find_running(run) == []

    # the rest: one --available-now run, itself an application on YARN, waited for
    arguments = [*job_arguments(run, ["logs"]), "--available-now"]
    command = spark_submit_command(run, JOB_PATH, arguments, {"spark.yarn.maxAppAttempts": "1"})
    code, output = run_command(command, PROGRESS_TIMEOUT_S)
    assert code == 0, output[-3000:]

    assert_exactly_once(spark, run, dict(zip(ids, records, strict=True)))
    print(f"yarn: ApplicationMaster kill to restart {restart_s:.1f}s")
