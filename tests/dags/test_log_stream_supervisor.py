"""log_stream_supervisor for real: Airflow runs the DAG (``dag.test()``), the DAG starts the real
streaming job with spark-submit against a real Kafka broker; the test SIGKILLs the driver, the
next DAG run brings it back from its checkpoint, and a run's watch does within seconds; nothing is
lost or duplicated, and the operator's stop leaves no traceback in the driver log. A corrupted
checkpoint stops the DAG with a clear error and an alert, and is left untouched. Preflight runs
only before a start: with Kafka down, a stop and a held job's runs pass, a start fails."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from logstream import supervisor
from logstream.config import Settings
from logstream.devtools.generator import GeneratorConfig, generate_logs
from logstream.kafka.admin import ensure_topics
from logstream.storage.tables import read_table
from tests.conftest import free_port
from tests.helpers import produce_with_ids

DAG_ID = "log_stream_supervisor"
RUN_CONF = {
    "action": "supervise",
    "pipelines": "logs",
    "confirm_timeout_seconds": 240,
    "watch_seconds": 0,
}
#: The watch restarts a SIGKILLed driver within this many seconds (a 1 s poll and one step).
RESTART_BEGUN_WITHIN_S = 10.0


@pytest.fixture
def run(settings, kafka_broker, airflow_env, monkeypatch, tmp_path) -> Settings:
    """What the DAG's tasks see through LOGSTREAM_*: the session broker, this test's folders and
    topic, a small fast stream. The job is always stopped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    values = {
        "state_dir": tmp_path / "state",
        "data_root": tmp_path / "data",
        "checkpoint_root": tmp_path / "checkpoints",
        "status_dir": tmp_path / "status",
        "alert_sink": f"jsonl:{tmp_path / 'alerts.jsonl'}",
        "kafka_host": settings.kafka_host,
        "kafka_port": settings.kafka_port,
        "logs_topic": f"sup-logs-{suffix}",
        "user_events_topic": f"sup-user-events-{suffix}",
        "trigger_interval": "1 second",
        "max_offsets_per_trigger": 1_000,
        "spark_master": "local[2]",
        "shuffle_partitions": 2,
        "spark_driver_memory": "1g",
        "supervisor_backoff_seconds": 5,
    }
    for name, value in values.items():
        monkeypatch.setenv(f"LOGSTREAM_{name.upper()}", str(value))
    ensure_topics(kafka_broker.bootstrap, [values["logs_topic"]], 4)
    settings_seen_by_tasks = Settings.load()
    try:
        yield settings_seen_by_tasks
    finally:
        record = supervisor.read_record(settings_seen_by_tasks)
        with contextlib.suppress(Exception):
            supervisor.stop_job(settings_seen_by_tasks)
        if record is not None:  # whatever happened above, no job outlives the test
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(record.pid, signal.SIGKILL)


def totals(run: Settings) -> dict:
    path = Path(run.status_dir) / "ingest_logs.json"
    try:
        return json.loads(path.read_text()).get("totals", {})
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_for_landed(
    run: Settings, at_least: int, kinds: tuple[str, ...] = ("valid",), timeout: float = 180
) -> None:
    """Wait until ingestion's totals (cumulative over restarts, kept exactly once in its
    checkpoint) of ``kinds`` reach ``at_least`` records."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(totals(run).get(kind, 0) for kind in kinds) >= at_least:
            return
        health = supervisor.inspect(run)
        assert health.state not in {"failed", "stopped"}, (health.reason, health.error_excerpt)
        time.sleep(0.5)
    raise AssertionError(f"fewer than {at_least} valid events after {timeout}s: {totals(run)}")


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def alerts(run: Settings) -> list[dict]:
    path = Path(run.alert_sink.removeprefix("jsonl:"))
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def xcom(run_id: str, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            run_id=run_id, dag_ids=DAG_ID, task_ids=task_id, key="return_value"
        )
        (row,) = session.scalars(query).all()
        return XComModel.deserialize_value(row)


def task_running(task_id: str) -> bool:
    """Whether a run of the DAG has ``task_id`` running now (read from the metadata DB)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError

    try:
        with create_session() as session:
            state = session.scalar(
                select(TaskInstance.state).where(
                    TaskInstance.dag_id == DAG_ID,
                    TaskInstance.task_id == task_id,
                    TaskInstance.state == "running",
                )
            )
    except OperationalError:  # SQLite busy with the run's own writes: ask again
        return False
    return state is not None


def kill_driver_during_the_watch(run: Settings, seen: dict) -> None:
    """Once a run's watch is running: ``before_kill``, SIGKILL the job's Python driver, time the
    restart (a new pid recorded) and the new process's first progress, ``after_restart``; then
    stop the job as an operator would, which ends the watch (also when something above failed)."""
    try:
        _kill_and_time(run, seen)
    except Exception as exc:  # noqa: BLE001 - re-raised by the test once the watch ended
        seen["error"] = exc
    finally:
        seen["stop"] = supervisor.stop_job(run)


def _kill_and_time(run: Settings, seen: dict) -> None:
    deadline = time.monotonic() + 240
    while not task_running("watch"):
        assert time.monotonic() < deadline, "the watch task never ran"
        time.sleep(0.2)
    seen["before_kill"]()
    killed = supervisor.read_record(run)
    driver = supervisor.processes.python_driver(killed.pid)
    seen["killed_at"] = time.monotonic()
    os.kill(driver.pid, signal.SIGKILL)
    while (record := supervisor.read_record(run)) is None or record.pid == killed.pid:
        assert time.monotonic() < seen["killed_at"] + 60, "the watch did not restart the job"
        time.sleep(0.1)
    seen["restart_begun_s"] = time.monotonic() - seen["killed_at"]
    supervisor.wait_for_progress(run, record.started_at, timeout=240, poll=0.2)
    seen["processing_again_s"] = time.monotonic() - seen["killed_at"]
    seen["restarted"] = record
    seen["after_restart"]()


def test_sigkilled_driver_is_restarted_from_its_checkpoint_exactly_once(
    run, dag_bag, kafka_broker, request
):
    dag = dag_bag.get_dag(DAG_ID)
    records = generate_logs(
        GeneratorConfig(
            seed=7, count=3_000, events_per_second=20.0, late_share=0.0, logs_topic=run.logs_topic
        )
    )
    thirds = [records[i::3] for i in range(3)]
    valid_after = [sum(r.truth is not None for r in part) for part in thirds]

    # before: a first third waits in Kafka; the DAG starts the job and it lands them
    ids = produce_with_ids(kafka_broker.bootstrap, thirds[0])
    first = dag.test(run_conf=RUN_CONF)
    assert first.state == "success"
    assert task_states(first)["preflight"] == "success"  # a first start: the environment checked
    started = supervisor.read_record(run)
    assert started is not None and supervisor.inspect(run).state == "running"
    wait_for_landed(run, valid_after[0])

    # during: a second third arrives and the driver is SIGKILLed mid-stream
    ids += produce_with_ids(kafka_broker.bootstrap, thirds[1])
    wait_for_landed(run, valid_after[0] + 1)
    os.killpg(started.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while supervisor.inspect(run).state != "failed":
        assert time.monotonic() < deadline, "the killed driver still looks alive"
        time.sleep(0.2)

    # the next watchdog run sees the dead driver and restarts it from the checkpoint
    second = dag.test(run_conf=RUN_CONF)
    assert second.state == "success"
    assert task_states(second)["preflight"] == "success"  # a restart: checked again
    restarted = supervisor.read_record(run)
    assert restarted.pid != started.pid and supervisor.inspect(run).state == "running"
    assert [r["reason"].split(":")[0] for r in supervisor.read_history(run)] == ["failed"]

    # the next run watches the job; half the last third arrives, the Python driver is SIGKILLed
    # mid-stream and the watch restarts it within seconds; the other half arrives after
    half = len(thirds[2]) // 2

    def half_the_last_third_arrives() -> None:
        ids.extend(produce_with_ids(kafka_broker.bootstrap, thirds[2][:half]))
        wait_for_landed(run, valid_after[0] + valid_after[1] + 1)

    def everything_lands() -> None:
        ids.extend(produce_with_ids(kafka_broker.bootstrap, thirds[2][half:]))
        wait_for_landed(run, len(records), kinds=("valid", "quarantined"))

    seen: dict = {"before_kill": half_the_last_third_arrives, "after_restart": everything_lands}
    killer = threading.Thread(target=kill_driver_during_the_watch, args=(run, seen))
    killer.start()
    watched = dag.test(run_conf={**RUN_CONF, "watch_seconds": 600})
    killer.join(timeout=60)
    if "error" in seen:
        raise seen["error"]
    print(
        f"SIGKILL of the driver -> restart begun {seen.get('restart_begun_s', -1):.1f}s, "
        f"processing again {seen.get('processing_again_s', -1):.1f}s"
    )
    assert watched.state == "success" and seen["stop"].action == "stopped"
    assert task_states(watched) == {
        "check": "success",
        "preflight": "skipped",
        "act": "success",
        "confirm": "success",
        "watch": "success",
    }
    assert seen["restart_begun_s"] < RESTART_BEGUN_WITHIN_S
    report = xcom(watched.run_id, "watch")
    assert report["restarts"] == 1 and report["ended"].startswith("the job is held")
    assert [(s["pulse"], s["action"], s["pid"]) for s in report["steps"]] == [
        ("dead", "restarted", seen["restarted"].pid)
    ]
    assert [r["reason"].split(":")[0] for r in supervisor.read_history(run)] == ["failed"] * 2
    assert supervisor.inspect(run).state == "held"

    # the operator's stop (SIGTERM) stopped the queries, then Spark: no traceback in its log
    with open(seen["restarted"].log, "rb") as log_file:
        log_file.seek(seen["restarted"].log_offset)
        last_run = log_file.read().decode(errors="replace")
    assert "stream_logs: SIGTERM: stopping the queries, then Spark" in last_run
    assert "Traceback" not in last_run and "stopped SparkContext" not in last_run

    spark = request.getfixturevalue("spark")
    by_id = dict(zip(ids, thirds[0] + thirds[1] + thirds[2], strict=True))
    valid = {event_id for event_id, record in by_id.items() if record.truth is not None}
    landed = [row.event_id for row in read_table(spark, run, "events").select("event_id").collect()]
    quarantined = [
        f"{row.kafka_topic}:{row.kafka_partition}:{row.kafka_offset}"
        for row in read_table(spark, run, "quarantine").collect()
    ]
    # every valid event exactly once in `events`
    assert len(landed) == len(set(landed)), "events duplicated across the kill and restart"
    assert valid <= set(landed), f"{len(valid - set(landed))} valid events missing"
    # and every record produced (before, during, after) exactly once in events or quarantine
    everything = landed + quarantined
    assert len(everything) == len(set(everything)) and set(everything) == set(by_id)
    assert totals(run)["valid"] == len(landed)


def test_corrupt_checkpoint_fails_the_run_with_an_alert_and_is_left_alone(
    run, dag_bag, kafka_broker, spark
):
    # a real checkpoint, written by Spark from the job's topic
    produce_with_ids(
        kafka_broker.bootstrap,
        generate_logs(GeneratorConfig(seed=3, count=200, logs_topic=run.logs_topic)),
    )
    checkpoint = Path(run.checkpoint_root) / "ingest_logs"
    query = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", run.kafka_bootstrap)
        .option("subscribe", run.logs_topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", 50)
        .load()
        .writeStream.format("noop")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    assert [r.query for r in supervisor.validate_checkpoints(run)] == ["ingest_logs"]

    latest = max(int(p.name) for p in (checkpoint / "offsets").iterdir() if p.name.isdigit())
    (checkpoint / "offsets" / str(latest)).write_bytes(b"\x00\x13garbage")
    before = {p: p.read_bytes() for p in checkpoint.rglob("*") if p.is_file()}

    dag_run = dag_bag.get_dag(DAG_ID).test(run_conf=RUN_CONF)

    assert dag_run.state == "failed"
    assert task_states(dag_run) == {
        "check": "failed",
        "preflight": "upstream_failed",
        "act": "upstream_failed",
        "confirm": "upstream_failed",
        "watch": "upstream_failed",
    }
    bad_file = f"{checkpoint}/offsets/{latest}"
    by_kind = {alert["kind"]: alert for alert in alerts(run)}
    assert by_kind["checkpoint_invalid"]["severity"] == "critical"
    assert by_kind["checkpoint_invalid"]["details"]["file"] == bad_file
    message = by_kind["checkpoint_invalid"]["details"]["message"]
    assert "is corrupt" in message and "restore the folder from a backup" in message.lower()
    assert f"mv {checkpoint} {checkpoint}.broken-" in message
    # the failed task's own alert carries the same message
    failure = by_kind["pipeline_failure"]
    assert failure["details"]["task_id"] == "check"
    assert "checkpoint of query ingest_logs is corrupt" in failure["summary"]

    assert {p: p.read_bytes() for p in checkpoint.rglob("*") if p.is_file()} == before
    assert supervisor.read_record(run) is None and supervisor.find_job_processes(run) == []


def test_preflight_runs_only_when_a_start_is_due(run, dag_bag, monkeypatch):
    """Kafka is down. Stopping the job, and watching a held one, need neither Kafka nor the jars:
    those runs pass with preflight skipped. An operator's start runs preflight, which fails the
    run before `act`, so nothing is started into the broken environment."""
    monkeypatch.setenv("LOGSTREAM_KAFKA_PORT", str(free_port()))
    dag = dag_bag.get_dag(DAG_ID)
    for task in dag.tasks:  # a failure should fail the run now, not after retry delays
        monkeypatch.setattr(task, "retries", 0)

    stop = dag.test(run_conf={**RUN_CONF, "action": "stop"})
    assert stop.state == "success"
    assert task_states(stop) == {
        "check": "success",
        "preflight": "skipped",
        "act": "success",
        "confirm": "success",
        "watch": "skipped",
    }
    assert supervisor.inspect(run).state == "held"

    watch = dag.test(run_conf=RUN_CONF)
    assert watch.state == "success"
    assert task_states(watch)["preflight"] == "skipped"
    # a watch ends at once on a held job
    watching = dag.test(run_conf={**RUN_CONF, "watch_seconds": 600})
    assert task_states(watching)["watch"] == "success"
    assert xcom(watching.run_id, "watch")["ended"].startswith("the job is held")

    start = dag.test(run_conf={**RUN_CONF, "action": "start"})
    assert start.state == "failed"
    assert task_states(start) == {
        "check": "success",
        "preflight": "failed",
        "act": "upstream_failed",
        "confirm": "upstream_failed",
        "watch": "upstream_failed",
    }
    assert supervisor.read_record(run) is None and supervisor.find_job_processes(run) == []
    failure = next(a for a in alerts(run) if a["kind"] == "pipeline_failure")
    assert failure["details"]["task_id"] == "preflight"
    assert "Kafka is not reachable" in failure["summary"]
