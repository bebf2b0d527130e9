"""The streaming job supervised on a three-node standalone cluster (a master, two workers), its
driver in cluster deploy mode, through everything a cluster does to a long-running job:

1. the driver's JVM is SIGKILLed on its worker: the supervisor learns it from the master and
   restarts the job from its checkpoints;
2. the worker that holds only executors dies: the driver stays, the lost executors (and the
   cached open windows on them) are recomputed elsewhere, no restart;
3. the worker that holds the driver dies: the master declares the driver lost, the supervisor
   restarts the job on the other worker;
4. the master restarts: it recovers its workers and application from disk; the driver runs on,
   or, when Spark's recovery drops it (a race with the workers' own re-registration), the
   supervisor restarts it from its checkpoints.

All of it twice: with the tables, checkpoints and status files on HDFS, and on S3 (``s3a://``);
the supervisor's checkpoint gate reads the checkpoints there, the restarted driver resumes from
them. Afterwards every event landed exactly once and the metric tables and look-back anomalies
equal the independent oracle's (:mod:`tests.oracle`).
"""

from __future__ import annotations

import time

import pytest

from logstream.runtime.spark import spark_submit_command
from logstream.supervisor import inspect, start_job, stop_job, watch_job
from logstream.supervisor.drivers import STANDALONE_LIVE, StandaloneDriver, run_command
from logstream.supervisor.processes import JOB_PATH, job_arguments
from logstream.supervisor.state import read_history
from tests.cluster import support
from tests.cluster.support import (
    driver_jvm,
    ingest_totals,
    sigkill,
    supervised_stream,
    wait_until,
    watch_until_restart,
)
from tests.exactly_once import assert_exactly_once
from tests.helpers import produce_with_ids

pytestmark = pytest.mark.cluster

TOPIC = "cluster-logs"
PROGRESS_TIMEOUT_S = 900


def driver_output(cluster, driver_id: str, lines: int = 40) -> str:
    """The last lines of a driver's stdout and stderr in its worker's work folder."""
    found = []
    for index in range(1, cluster.worker_count + 1):
        for name in ("stdout", "stderr"):
            path = cluster.worker_dir(index) / driver_id / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                found.append(f"--- {path}\n" + "\n".join(tail))
    return "\n".join(found) or f"(no output of {driver_id} under the workers)"


def wait_for_valid(run, cluster, minimum: int, what: str) -> None:
    support.wait_for_valid(
        run, minimum, what, lambda driver: driver_output(cluster, driver), PROGRESS_TIMEOUT_S
    )


def worker_of(cluster, run) -> int:
    """The worker (1-based) whose RPC port the master names for the job's driver (once the
    driver was given a worker)."""
    detail = wait_until("the driver has a worker", lambda: inspect(run).driver_detail, 120)
    return 1 + [rpc for rpc, _ in cluster.ports.workers].index(int(detail.rsplit(":", 1)[1]))


def test_exactly_once_through_driver_worker_and_master_loss(
    spark, kafka_broker, spark_cluster, on_cluster_remote
):
    cluster = spark_cluster
    topic = f"{TOPIC}-{on_cluster_remote.data_root.split(':', 1)[0]}"
    run, records = supervised_stream(
        on_cluster_remote, topic, 15_000, 11, kafka_broker, supervisor_max_restarts=5
    )
    size = len(records) // 4
    chunks = [records[i * size : (i + 1) * size] for i in range(3)] + [records[3 * size :]]
    valid_in = [sum(r.truth is not None for r in chunk) for chunk in chunks]
    ids: list[str] = []
    timeline: dict[str, float | bool] = {}
    clock = time.monotonic()

    # the supervisor submits the driver to the master; it runs on a worker
    ids += produce_with_ids(kafka_broker.bootstrap, chunks[0])
    started = start_job(run, ["logs"])
    assert started.action == "started" and started.driver_id.startswith("driver-"), started
    wait_for_valid(run, cluster, valid_in[0] // 2, "first start")
    first = inspect(run)
    assert first.state in {"running", "starting"} and first.driver_id == started.driver_id, first
    timeline["start_to_progress_s"] = time.monotonic() - clock

    # 1. SIGKILL the driver's JVM on its worker
    jvm = driver_jvm(started.driver_id)
    assert jvm is not None, driver_output(cluster, started.driver_id)
    sigkill(jvm)
    timeline["driver_kill_to_restart_s"] = watch_until_restart(run, 0, 300)
    second = inspect(run)
    assert second.driver_id not in ("", started.driver_id), second
    ids += produce_with_ids(kafka_broker.bootstrap, chunks[1])
    wait_for_valid(run, cluster, valid_in[0] + valid_in[1] // 2, "after the driver kill")

    # 2. the worker without the driver dies: executors lost, the driver stays
    health = inspect(run)
    driver_worker = worker_of(cluster, run)
    other = 3 - driver_worker
    cluster.kill_worker(other)
    ids += produce_with_ids(kafka_broker.bootstrap, chunks[2])
    wait_for_valid(
        run, cluster, sum(valid_in[:2]) + valid_in[2] // 2, "after losing the executor worker"
    )
    kept = inspect(run)
    assert kept.driver_id == health.driver_id, "the driver must survive an executor's worker"
    assert len(read_history(run)) == 1, read_history(run)
    cluster.start_worker(other)

    # 3. the worker that holds the driver dies: the master declares the driver lost
    clock = time.monotonic()
    cluster.kill_worker(driver_worker)
    timeline["driver_worker_kill_to_restart_s"] = watch_until_restart(run, 1, 300)
    third = inspect(run)
    assert third.driver_id not in ("", health.driver_id), third
    assert worker_of(cluster, run) == other, third
    cluster.start_worker(driver_worker)

    # 4. the master restarts: it recovers its workers and the application from recovery/. The
    # running driver survives unless a worker re-registers on its own before answering the new
    # master's call (a race in Spark's recovery): then the master drops the driver, which it does
    # not relaunch (spark.driver.supervise=false), and the supervisor restarts the job
    ids += produce_with_ids(kafka_broker.bootstrap, chunks[3])
    clock = time.monotonic()
    cluster.restart_master()
    cluster.wait_for_workers(2, 120)
    timeline["master_restart_s"] = time.monotonic() - clock
    history_before = len(read_history(run))

    def all_landed() -> str | None:
        return "all landed" if ingest_totals(run).get("valid", 0) >= sum(valid_in) else None

    report = watch_job(run, PROGRESS_TIMEOUT_S, poll_s=1.0, should_end=all_landed)
    assert report.ended == "all landed", (report.as_dict(), ingest_totals(run))
    after = inspect(run)
    assert after.state == "running", after
    survived = after.driver_id == third.driver_id
    timeline["master_restart_driver_survived"] = survived
    assert len(read_history(run)) == history_before + (0 if survived else 1), read_history(run)

    # the operator's stop goes through the master too; then one catch-up run to the end
    stopped = stop_job(run, grace_seconds=60)
    assert stopped.action == "stopped" and after.driver_id in stopped.reason, stopped
    run_to_the_end(run, cluster, after.driver_id)

    by_id = dict(zip(ids, records, strict=True))
    assert_exactly_once(spark, run, by_id)
    print(f"{run.data_root}: cluster timeline", timeline)


def run_to_the_end(run, cluster, stopped_driver: str) -> None:
    """After an operator's stop of ``stopped_driver``: it is no longer live on the master; one
    ``--available-now`` run of the job, itself a cluster-mode driver, lands the rest."""
    standalone = StandaloneDriver(run)
    assert standalone.driver_status(stopped_driver)["driverState"] not in STANDALONE_LIVE
    arguments = [*job_arguments(run, ["logs"]), "--available-now"]
    code, output = run_command(spark_submit_command(run, JOB_PATH, arguments), 300)
    final = standalone.parse_submission(output, run, {})
    assert code == 0 and final, output[-3000:]
    state = wait_until(
        "the catch-up driver finished",
        lambda: (s := standalone.driver_status(final)["driverState"]) not in STANDALONE_LIVE and s,
        PROGRESS_TIMEOUT_S,
        poll=2,
    )
    assert state == "FINISHED", driver_output(cluster, final)
