"""The streaming job's Prometheus exporter (logstream.stream.status): what a scrape reads after the
listener saw Spark's events, the loopback binding, and a taken port that must not fail the job."""

from __future__ import annotations

import logging
import socket
import time
import types
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from logstream.stream import status
from tests.conftest import free_port
from tests.include.stream.test_status import progress_event


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """What Prometheus would read: ``(sample name, sorted labels) -> value``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def exporter():
    port = free_port()
    server = status.start_metrics_server(port)
    assert server is not None
    yield port
    server.shutdown()
    server.server_close()


def test_a_scrape_reads_what_the_listener_saw(tmp_path, exporter):
    registry = status.TotalsRegistry()
    registry.update("ingest_metrics_a", {"valid": 990, "quarantined": 10, "late": 4, "errors": 99})
    registry.update("ingest_metrics_a", {"response_time_sum_s": 49.5, "response_time_count": 990})
    listener = status.StatusListener(tmp_path, registry, metrics=True, trigger_interval_s=2.0)
    before = time.time()
    listener.onQueryProgress(progress_event("ingest_metrics_a", "2026-11-25T13:05:00.000Z"))
    listener.onQueryProgress(
        progress_event(
            "ingest_metrics_a",
            "2026-11-25T13:05:02.000Z",
            durationMs={"triggerExecution": 3500},
            inputRowsPerSecond=250.0,
            processedRowsPerSecond=400.0,
        )
    )
    got = scrape(exporter)
    labels = (("pipeline", "metrics_a"), ("query", "ingest_metrics_a"))

    def value(name: str, *extra: tuple[str, str]) -> float:
        return got[(name, tuple(sorted((*labels, *extra))))]

    assert value("logstream_kafka_lag_records") == 15  # (100 - 90) + (45 - 40)
    assert value("logstream_last_batch_duration_seconds") == 3.5
    assert value("logstream_trigger_interval_seconds") == 2.0
    assert value("logstream_input_rows_per_second") == 250.0
    assert value("logstream_processed_rows_per_second") == 400.0
    assert value("logstream_event_time_lag_seconds") == 3.5  # 13:05:02.000 - 13:04:58.500
    # 2026-11-25T13:00:00Z
    assert value("logstream_watermark_timestamp_seconds") == 1_795_611_600
    assert before <= value("logstream_last_progress_timestamp_seconds") <= time.time()
    assert value("logstream_query_up") == 1
    # every batch counts: two batches of 1.234 s and 3.5 s, 10 input rows each
    assert value("logstream_batch_duration_seconds_count") == 2
    assert value("logstream_batch_duration_seconds_sum") == pytest.approx(4.734)
    assert value("logstream_batch_duration_seconds_bucket", ("le", "1.0")) == 0
    assert value("logstream_batch_duration_seconds_bucket", ("le", "2.0")) == 1
    assert value("logstream_batch_duration_seconds_bucket", ("le", "4.0")) == 2
    assert value("logstream_batch_duration_seconds_bucket", ("le", "+Inf")) == 2
    assert value("logstream_input_rows_total") == 20
    assert value("logstream_valid_records_total") == 990
    assert value("logstream_quarantined_records_total") == 10
    assert value("logstream_late_records_total") == 4
    assert value("logstream_rows_dropped_by_watermark_total") == 4  # ingestion's late rows
    assert value("logstream_error_records_total") == 99
    assert value("logstream_response_time_seconds_sum") == 49.5
    assert value("logstream_response_time_seconds_count") == 990
    # the process start time tells restarts apart
    assert got[("logstream_process_start_time_seconds", ())] <= before
    # labels are query and pipeline only: no service, path or user from the traffic (the alert
    # path's counters, which other tests of this process may have moved, add the channel name)
    traffic = [sample for name, sample in got if name.startswith("logstream_")
               and not name.startswith("logstream_alerts_")]  # fmt: skip
    assert {key for sample in traffic for key, _ in sample} <= {
        "query",
        "pipeline",
        "le",
    }


def test_idle_moves_the_heartbeat_and_a_stopped_query_is_down_without_gauges(tmp_path, exporter):
    listener = status.StatusListener(tmp_path, status.TotalsRegistry(), metrics=True)
    query_id = "0d4e"
    started = types.SimpleNamespace(
        id=query_id, runId="r1", name="ingest_metrics_b", timestamp="2026-11-25T13:00:00Z"
    )
    listener.onQueryStarted(started)
    labels = (("pipeline", "metrics_b"), ("query", "ingest_metrics_b"))
    first = scrape(exporter)[("logstream_last_progress_timestamp_seconds", labels)]
    assert scrape(exporter)[("logstream_query_up", labels)] == 1
    # no trigger interval was given: none is exported (the rules fall back to 2 s)
    assert ("logstream_trigger_interval_seconds", labels) not in scrape(exporter)
    time.sleep(0.05)
    listener.onQueryIdle(types.SimpleNamespace(id=query_id))
    assert scrape(exporter)[("logstream_last_progress_timestamp_seconds", labels)] > first
    listener.onQueryProgress(progress_event("ingest_metrics_b", "2026-11-25T13:05:00.000Z"))
    assert scrape(exporter)[("logstream_kafka_lag_records", labels)] == 15
    listener.onQueryTerminated(types.SimpleNamespace(id=query_id, exception="boom"))
    after = scrape(exporter)
    assert after[("logstream_query_up", labels)] == 0
    # a stopped query's gauges go (no frozen lag or heartbeat to alert on); counters stay
    assert ("logstream_kafka_lag_records", labels) not in after
    assert ("logstream_last_progress_timestamp_seconds", labels) not in after
    assert after[("logstream_input_rows_total", labels)] == 10


def test_hostile_query_names_become_safe_label_values():
    assert status.query_labels('ingest_x"} evil{a="') == ("ingest_x___evil_a__", "x___evil_a__")
    assert status.query_labels("q" * 200) == ("q" * 80, "q" * 80)
    assert status.query_labels("") == ("unnamed", "unnamed")


def test_the_exporter_binds_loopback_only():
    port = free_port()
    server = status.start_metrics_server(port)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_taken_port_warns_once_and_the_job_goes_on(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="logstream.stream.status"):
            assert status.start_metrics_server(port) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert f"127.0.0.1:{port}" in message and "LOGSTREAM_METRICS_PORT" in message


def test_port_zero_serves_nothing():
    assert status.start_metrics_server(0) is None
