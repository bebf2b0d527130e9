"""The project's DAGs on Airflow as a team runs it (:mod:`logstream.runtime.airflow_team`):
Postgres metadata, the CeleryExecutor on Redis, and the api-server, scheduler, dag-processor,
triggerer and a Celery worker as separate processes, all started here on loopback.

Each DAG is unpaused and triggered through the REST API with the ``logstream`` admin's token, as
a user would; the scheduler queues its tasks on Redis and the Celery worker runs them (every task
instance's Celery task id is in the worker's log and succeeded in Celery's result backend). The
runs' outputs are checked as the DAG tests check them (tests/dags), the reconciled windows and
the streamed events against the independent oracle. The Spark jobs run with ``local[2]``.

Scheduled runs are off (``use_job_schedule=False``): only the runs the test triggers, and the
reconciliation ``log_backfill`` triggers, run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psutil
import pytest
import requests

from logstream import schemas
from logstream.batch.quality import load_result
from logstream.batch.quality.request_counts import SERVICE_REQUEST_COUNTS
from logstream.config import Settings
from logstream.devtools.generator import GeneratorConfig, generate_logs
from logstream.kafka.admin import ensure_topics
from logstream.runtime.airflow_team import TeamAirflow
from logstream.storage.tables import read_table, table_path
from tests.conftest import free_port
from tests.dags.test_latency_report import HOUR, bronze_rows
from tests.dags.test_log_backfill import ACCESS_LOG
from tests.helpers import produce_with_ids
from tests.integration.test_quality import DAY as QUALITY_DAY
from tests.integration.test_quality import write_day
from tests.integration.test_reconciliation import (
    _aware,
    _key,
    build_log_events,
    build_user_events,
    oracle_rows,
    write_bronze,
)

#: a DAG run spans several spark-submits: longer than the suite's default per-test timeout
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2400)]

FIRST, SECOND = date(2026, 3, 10), date(2026, 3, 11)
QUALITY_SUITES = "events,response_time,processing_latency,cross/request_counts"
#: the longest a run may take on a busy 2-core machine (each spark-submit is a JVM of its own)
RUN_TIMEOUT_S = 1200
START_TIMEOUT_S = 600
TIMINGS: dict[str, float] = {}


class Api:
    """The team Airflow's REST API as the ``logstream`` admin."""

    def __init__(self, airflow: TeamAirflow) -> None:
        self.url = f"{airflow.url}/api/v2"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {airflow.token()}"

    def call(self, method: str, path: str, **kwargs) -> dict:
        answer = self.session.request(method, f"{self.url}{path}", timeout=60, **kwargs)
        assert answer.status_code in (200, 201), f"{method} {path}: {answer.text}"
        return answer.json()

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 300) -> None:
        """Until the dag-processor has parsed every DAG (and found no import error)."""
        deadline = time.monotonic() + timeout
        while True:
            errors = self.call("GET", "/importErrors")
            assert errors["total_entries"] == 0, errors
            known = {
                dag["dag_id"] for dag in self.call("GET", "/dags", params={"limit": 100})["dags"]
            }
            if set(dag_ids) <= known:
                return
            assert time.monotonic() < deadline, f"DAGs not parsed: {set(dag_ids) - known}"
            time.sleep(2)

    def trigger(self, dag_id: str, conf: dict) -> str:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run = self.call(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}
        )
        return run["dag_run_id"]

    def wait(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT_S) -> dict:
        """The run once it ended (success or failed)."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            assert time.monotonic() < deadline, f"{dag_id} {run_id} still {run['state']}"
            time.sleep(3)

    def run(self, dag_id: str, conf: dict) -> tuple[str, dict]:
        """Trigger ``dag_id`` and wait for it; its run id and final state, timed."""
        started = time.monotonic()
        run_id = self.trigger(dag_id, conf)
        run = self.wait(dag_id, run_id)
        TIMINGS[dag_id] = time.monotonic() - started
        return run_id, run

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"]
            for ti in tis
        }

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1):
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        entry = self.call(
            "GET",
            path,
            params={"map_index": map_index, "deserialize": True, "stringify": False},
        )
        value = entry["value"]
        return json.loads(value) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def team_settings(settings: Settings, kafka_broker, tmp_path_factory) -> Settings:
    """One state, data and reports folder for every DAG (their days do not overlap), the
    session's broker, small local Spark jobs, alerts to a file."""
    root = tmp_path_factory.mktemp("airflow-team")
    return settings.replace(
        state_dir=root / "state",
        data_root=str(root / "data"),
        checkpoint_root=str(root / "checkpoints"),
        status_dir=str(root / "status"),
        reports_dir=str(root / "reports"),
        alert_sink=f"jsonl:{root / 'alerts.jsonl'}",
        airflow_port=free_port(),
        logs_topic="team-logs",
        user_events_topic="team-user-events",
        trigger_interval="1 second",
        max_offsets_per_trigger=1_000,
        spark_master="local[2]",
        shuffle_partitions=2,
        spark_driver_memory="1g",
        supervisor_backoff_seconds=5,
        metrics_port=0,
    )


@pytest.fixture(scope="module")
def team(team_settings: Settings) -> Iterator[TeamAirflow]:
    airflow = TeamAirflow(
        team_settings,
        worker_concurrency=2,
        overrides={
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # each spark-submit is a short-lived JVM: C1-only JIT halves its CPU on small inputs
            "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1",
        },
    )
    started = time.monotonic()
    try:
        airflow.start(timeout=START_TIMEOUT_S)
        TIMINGS["start"] = time.monotonic() - started
        yield airflow
    finally:
        stopping = time.monotonic()
        airflow.stop()
        airflow.postgres.remove()  # its data folder lives outside the test's tmp folder
        TIMINGS["stop"] = time.monotonic() - stopping
        print("team Airflow timings (s):", {k: round(v) for k, v in TIMINGS.items()})


@pytest.fixture(scope="module")
def api(team: TeamAirflow) -> Api:
    client = Api(team)
    client.wait_for_dags(
        [
            "data_quality",
            "late_data_reconciliation",
            "latency_report",
            "log_backfill",
            "log_stream_supervisor",
        ]
    )
    return client


@pytest.fixture(scope="module")
def world(spark, team_settings: Settings) -> dict:
    """Every DAG's input under the one data_root: each writer replaces only its partitions."""
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    try:
        write_day(spark, team_settings, QUALITY_DAY, families=SERVICE_REQUEST_COUNTS)
        logs, users = build_log_events(FIRST), build_user_events(FIRST)
        write_bronze(spark, team_settings, logs, users)
        (
            spark.createDataFrame(
                bronze_rows("api", 120, 6) + bronze_rows("slow", 2500, 4), schemas.EVENTS
            )
            .write.mode("overwrite")
            .partitionBy("event_date", "event_hour")
            .parquet(table_path(team_settings, "events"))
        )
    finally:
        spark.conf.set("spark.sql.sources.partitionOverwriteMode", "static")
    return {"logs": logs, "user_events": users}


def ran_on_the_celery_worker(team: TeamAirflow, dag_id: str, run_id: str) -> list[str]:
    """The run's task instances that ran; asserts each went through Celery: queued on the
    ``default`` queue, its Celery task id in the worker's log and SUCCESS in the result backend
    (the metadata database, read directly)."""
    import psycopg2

    database = team.database()
    connection = psycopg2.connect(
        host=database.host,
        port=database.port,
        user=database.user,
        password=database.password,
        dbname=database.name,
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT task_id, map_index, queue, external_executor_id FROM task_instance "
                "WHERE dag_id = %s AND run_id = %s AND state IN ('success', 'failed')",
                (dag_id, run_id),
            )
            ran = cursor.fetchall()
            celery_ids = [row[3] for row in ran]
            assert all(celery_ids), ran
            # a task instance is marked done before its Celery task returns: wait for Celery
            deadline = time.monotonic() + 300
            while True:
                cursor.execute(
                    "SELECT task_id, status FROM celery_taskmeta WHERE task_id = ANY(%s)",
                    (celery_ids,),
                )
                statuses = dict(cursor.fetchall())
                done = all(statuses.get(i) in ("SUCCESS", "FAILURE") for i in celery_ids)
                if done or time.monotonic() > deadline:
                    break
                time.sleep(2)
    finally:
        connection.close()
    worker_log = team.processes["celery-worker"].output.read_text(errors="replace")
    for task_id, map_index, queue, celery_id in ran:
        assert queue == "default", (task_id, queue)
        assert statuses.get(celery_id) == "SUCCESS", (task_id, map_index, celery_id, statuses)
        assert celery_id in worker_log, f"{task_id}: Celery task {celery_id} not in the worker log"
    return sorted(f"{task_id}[{map_index}]" for task_id, map_index, _, _ in ran)


def test_the_team_airflow_runs_as_separate_processes_on_loopback(team: TeamAirflow):
    assert team.status() == dict.fromkeys(
        [
            "postgres",
            "redis",
            "api-server",
            "scheduler",
            "dag-processor",
            "triggerer",
            "celery-worker",
        ],
        True,
    )
    health = team.health()
    assert {health[k]["status"] for k in health} == {"healthy"}, health
    assert team.worker_pings(timeout=5.0), "the Celery worker does not answer through Redis"
    assert (team.password_file.stat().st_mode & 0o777) == 0o600
    for secret in (
        team.postgres.password_file("airflow"),
        team.redis.folder / "password",
        team.home / "secrets.json",
    ):
        assert (secret.stat().st_mode & 0o777) == 0o600, secret
    # the components get the secrets through their environment (they answered above, so they
    # reached Postgres and Redis), never on a command line
    password = team.postgres.password_file("airflow").read_text().strip()
    for name, process in team.processes.items():
        pid = process.pid()
        assert pid is not None, name
        assert password not in " ".join(psutil.Process(pid).cmdline()), name
    # every port the team listens on is on loopback
    ports = {team.settings.airflow_port, team.postgres.port, team.redis.port}
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports
    }
    assert {port for _, port in listening} == ports
    assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening


def test_data_quality_passes_the_clean_day_on_the_worker(api, team, team_settings, world):
    run_id, run = api.run(
        "data_quality", {"date": QUALITY_DAY.isoformat(), "suites": QUALITY_SUITES}
    )

    assert run["state"] == "success", api.task_states("data_quality", run_id)
    assert ran_on_the_celery_worker(team, "data_quality", run_id) == [
        "plan[-1]",
        "publish[-1]",
        "validate[-1]",
    ]
    verdict = load_result(team_settings, QUALITY_DAY)
    assert verdict.success and verdict.run_id == run_id
    assert [suite.suite for suite in verdict.suites] == QUALITY_SUITES.split(",")


def test_reconciliation_of_a_range_equals_the_oracle(api, team, team_settings, world, spark):
    run_id, run = api.run(
        "late_data_reconciliation",
        {"start_date": FIRST.isoformat(), "end_date": SECOND.isoformat()},
    )

    assert run["state"] == "success", api.task_states("late_data_reconciliation", run_id)
    assert ran_on_the_celery_worker(team, "late_data_reconciliation", run_id) == [
        "plan_days[-1]",
        "publish[-1]",
        "reconcile[0]",
        "reconcile[1]",
    ]
    reports = Path(team_settings.reports_dir) / "reconciliation"
    first = json.loads((reports / f"{FIRST}.json").read_text())
    assert first["totals"]["windows"] == first["totals"]["windows_corrected"] > 0
    assert first["late"]["events"]["late_events"] > 0
    published = api.xcom("late_data_reconciliation", run_id, "publish")
    assert published["days"] == [FIRST.isoformat(), SECOND.isoformat()]

    # the reconciled windows of the first day are the oracle's
    family = "response_time"
    want = {
        _key(family, row)
        for row in oracle_rows(family, world["logs"])
        if row["window_start"].date() == FIRST
    }
    table = read_table(spark, team_settings, f"reconciled/{family}")
    got = [
        _key(family, row.asDict(recursive=True))
        for row in table.collect()
        if _aware(row.window_start).date() == FIRST
    ]
    assert len(got) == len(set(got)) and set(got) == want and want


def test_latency_report_writes_the_table_the_page_and_the_alerts(
    api, team, team_settings, world, spark
):
    run_id, run = api.run("latency_report", {"hour": HOUR.strftime("%Y-%m-%dT%H")})

    assert run["state"] == "success", api.task_states("latency_report", run_id)
    assert ran_on_the_celery_worker(team, "latency_report", run_id) == [
        "build_report[-1]",
        "plan[-1]",
        "publish[-1]",
    ]
    report = Path(team_settings.reports_dir) / "latency" / "2026-11-25T13.html"
    assert report.exists() and "slow" in report.read_text()
    rows = [
        r.asDict()
        for r in spark.read.parquet(table_path(team_settings, "latency_report")).collect()
    ]
    end_to_end = {r["service"]: r for r in rows if r["stage"] == "end_to_end_ms"}
    assert (end_to_end["api"]["count"], end_to_end["slow"]["count"]) == (6, 4)
    assert (end_to_end["api"]["alert_level"], end_to_end["slow"]["alert_level"]) == (
        "OK",
        "CRITICAL",
    )
    alerts = Path(team_settings.alert_sink.removeprefix("jsonl:")).read_text().splitlines()
    keys = {json.loads(line)["dedup_key"] for line in alerts}
    assert "latency:slow:end_to_end_ms:2026-11-25T13" in keys


def test_backfill_lands_and_its_reconciliation_runs_on_the_worker(
    api, team, team_settings, world, tmp_path_factory
):
    archive = tmp_path_factory.mktemp("archive")
    (archive / "access.log").write_text(ACCESS_LOG)
    run_id, run = api.run("log_backfill", {"path": f"file://{archive}/*.log", "service": "shop"})

    assert run["state"] == "success", api.task_states("log_backfill", run_id)
    ran = ran_on_the_celery_worker(team, "log_backfill", run_id)
    assert ran == ["land[-1]", "plan_reconciliation[-1]", "reconcile[0]"]
    summary = api.xcom("log_backfill", run_id, "land")
    assert {k: summary[k] for k in ("files", "lines", "events_landed", "quarantined")} == {
        "files": 1,
        "lines": 3,
        "events_landed": 2,
        "quarantined": 1,
    }
    assert summary["days_touched"] == ["2015-05-17", "2015-05-18"]

    # the reconciliation it triggered is scheduled and run by the team as well
    triggered = f"log_backfill__{run_id}__0"
    started = time.monotonic()
    reconciled = api.wait("late_data_reconciliation", triggered)
    TIMINGS["late_data_reconciliation (from log_backfill)"] = time.monotonic() - started
    assert reconciled["state"] == "success"
    assert reconciled["conf"] == {
        "start_date": "2015-05-17",
        "end_date": "2015-05-18",
        "origin": "backfill",
    }
    ran_on_the_celery_worker(team, "late_data_reconciliation", triggered)
    reports = Path(team_settings.reports_dir) / "reconciliation"
    assert (reports / "2015-05-17.json").exists() and (reports / "2015-05-18.json").exists()


def test_the_supervisor_starts_the_stream_from_the_worker_and_stops_it(
    api, team, team_settings, kafka_broker, spark, world
):
    from logstream import supervisor

    ensure_topics(kafka_broker.bootstrap, [team_settings.logs_topic], 2)
    records = generate_logs(
        GeneratorConfig(seed=5, count=600, late_share=0.0, logs_topic=team_settings.logs_topic)
    )
    ids = produce_with_ids(kafka_broker.bootstrap, records)
    conf = {"action": "supervise", "pipelines": "logs", "confirm_timeout_seconds": 600}
    try:
        run_id, run = api.run("log_stream_supervisor", {**conf, "watch_seconds": 0})
        assert run["state"] == "success", api.task_states("log_stream_supervisor", run_id)
        assert "act[-1]" in ran_on_the_celery_worker(team, "log_stream_supervisor", run_id)
        assert supervisor.inspect(team_settings).state == "running"

        # the job runs detached from the worker's task: every record lands, exactly once
        deadline = time.monotonic() + RUN_TIMEOUT_S
        status = Path(team_settings.status_dir) / "ingest_logs.json"
        while True:
            totals = json.loads(status.read_text()).get("totals", {}) if status.exists() else {}
            if totals.get("valid", 0) + totals.get("quarantined", 0) >= len(records):
                break
            assert time.monotonic() < deadline, f"not everything landed: {totals}"
            time.sleep(1)
    finally:
        stop_id, stopped = api.run("log_stream_supervisor", {**conf, "action": "stop"})
    assert stopped["state"] == "success", api.task_states("log_stream_supervisor", stop_id)
    assert supervisor.inspect(team_settings).state == "held"

    produced = set(ids)
    valid = {i for i, r in zip(ids, records, strict=True) if r.truth is not None}
    landed = [
        row.event_id
        for row in read_table(spark, team_settings, "events").select("event_id").collect()
        if row.event_id in produced
    ]
    assert len(landed) == len(set(landed)), "events duplicated"
    assert set(landed) == valid
