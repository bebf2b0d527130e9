"""The latency_report DAG for real: Airflow runs plan -> spark-submit of the job -> publish."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from logstream import schemas
from logstream.storage.tables import table_path

HOUR = datetime(2026, 11, 25, 13, tzinfo=UTC)


def bronze_rows(service: str, end_to_end_ms: int, count: int) -> list[tuple]:
    rows = []
    for index in range(count):
        event_time = HOUR + timedelta(minutes=index * 7, milliseconds=index)
        values = {name: None for name in schemas.EVENTS.fieldNames()}
        values.update(
            event_id=f"logs:1:{service}:{index}",
            event_time=event_time,
            service=service,
            kafka_timestamp=event_time + timedelta(milliseconds=40),
            processing_time=event_time + timedelta(milliseconds=end_to_end_ms),
            event_date=event_time.date(),
            event_hour=event_time.hour,
        )
        rows.append(tuple(values[name] for name in schemas.EVENTS.fieldNames()))
    return rows


def test_latency_report_dag_writes_table_html_and_alerts(
    spark, settings, dag_bag, airflow_env, monkeypatch, tmp_path, capfd
):
    paths = {
        "LOGSTREAM_DATA_ROOT": tmp_path / "data",
        "LOGSTREAM_REPORTS_DIR": tmp_path / "reports",
        "LOGSTREAM_STATUS_DIR": tmp_path / "status",
    }
    for key, value in paths.items():
        monkeypatch.setenv(key, str(value))
    alerts_file = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("LOGSTREAM_ALERT_SINK", f"jsonl:{alerts_file}")
    monkeypatch.setenv("LOGSTREAM_SPARK_DRIVER_MEMORY", "1g")
    monkeypatch.setenv("LOGSTREAM_SHUFFLE_PARTITIONS", "2")
    data_settings = settings.replace(data_root=str(paths["LOGSTREAM_DATA_ROOT"]))
    # bronze: api is fast (OK), slow averages 2500 ms end to end (CRITICAL)
    (
        spark.createDataFrame(
            bronze_rows("api", 120, 6) + bronze_rows("slow", 2500, 4), schemas.EVENTS
        )
        .write.partitionBy("event_date", "event_hour")
        .parquet(table_path(data_settings, "events"))
    )

    dag = dag_bag.get_dag("latency_report")
    for task in dag.tasks:  # a failure should fail the test now, not after retry delays
        monkeypatch.setattr(task, "retries", 0)
    run = dag.test(logical_date=HOUR + timedelta(hours=3), run_conf={"hour": "2026-11-25T13"})

    assert run.state == "success"
    report = paths["LOGSTREAM_REPORTS_DIR"] / "latency" / "2026-11-25T13.html"
    assert report.exists() and "slow" in report.read_text()
    assert f"Latency report: {report.as_uri()}" in capfd.readouterr().out

    rows = [
        r.asDict()
        for r in spark.read.parquet(table_path(data_settings, "latency_report")).collect()
    ]
    end_to_end = {r["service"]: r for r in rows if r["stage"] == "end_to_end_ms"}
    assert (end_to_end["api"]["count"], end_to_end["slow"]["count"]) == (6, 4)
    assert (end_to_end["api"]["alert_level"], end_to_end["slow"]["alert_level"]) == (
        "OK",
        "CRITICAL",
    )
    assert end_to_end["*"]["max"] == 2500.0

    alerts = [json.loads(line) for line in Path(alerts_file).read_text().splitlines()]
    latency_alerts = {a["dedup_key"]: a for a in alerts if a["kind"] == "latency"}
    assert set(latency_alerts) == {
        "latency:slow:end_to_end_ms:2026-11-25T13",
        "latency:slow:kafka_to_processed_ms:2026-11-25T13",  # 2460 ms: CRITICAL as well
    }
    assert {a["severity"] for a in latency_alerts.values()} == {"critical"}
    assert all(a["links"]["report"] == report.as_uri() for a in latency_alerts.values())
