"""The shipped Prometheus configuration and rules against Debian's real ``prometheus`` and
``promtool``: they load, their unit tests pass, and a live Prometheus started here scrapes the
job's exporter and fires the stalled-query alert once the listener stops reporting progress."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from logstream.config import PROJECT_ROOT, Settings
from logstream.errors import ServiceError
from logstream.ops.prometheus import DEFAULT_CONFIG, LocalPrometheus, render_config
from logstream.stream import status
from tests.conftest import free_port
from tests.include.stream.test_status import progress_event

RULES_DIR = PROJECT_ROOT / "deploy" / "prometheus" / "rules"
RULES = RULES_DIR / "logstream.rules.yml"
STALL_S = 3  # the test's stall threshold (the shipped one is 300 s)
QUERY = "ingest_prom_live"


@pytest.fixture(autouse=True)
def _debian_prometheus() -> None:
    for binary in ("prometheus", "promtool"):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is missing: install Debian's prometheus (apt-packages.txt)")


def promtool(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["promtool", *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def test_shipped_config_and_rules_load():
    checked = promtool("check", "config", DEFAULT_CONFIG)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 rule files found" in checked.stdout
    rules = promtool("check", "rules", RULES)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 24 rules found" in rules.stdout


def test_rules_unit_tests_pass():
    result = promtool("test", "rules", RULES_DIR / "logstream.rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_and_labelled_for_alertmanager():
    rules = yaml.safe_load(RULES.read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    tests = (RULES_DIR / "logstream.rules.test.yml").read_text()
    for rule in alerts:
        assert f"alertname: {rule['alert']}" in tests, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["labels"]["kind"], rule["alert"]
    # Alertmanager's inhibition (deploy/alertmanager) mutes the data alerts while the pipeline is
    # down: the down alert is its source, the traffic's alerts its targets
    inhibit = yaml.safe_load((PROJECT_ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    pairs = [(r["source_matchers"], r["target_matchers"]) for r in inhibit["inhibit_rules"]]
    assert (['category="pipeline_down"'], ['category="data"']) in pairs
    category = {rule["alert"]: rule["labels"]["category"] for rule in alerts}
    assert category["LogstreamPipelineDown"] == "pipeline_down"
    for name in ("LogstreamErrorRateHigh", "LogstreamQuarantineRateHigh"):
        assert category[name] == "data"
    assert category["LogstreamRowsDroppedByWatermark"] == "data"
    down = [rule for rule in alerts if rule["alert"] == "LogstreamPipelineDown"]
    assert [rule["labels"]["kind"] for rule in down] == ["pipeline_down"]


def test_rendered_config_names_the_actual_ports(tmp_path):
    config = render_config(
        DEFAULT_CONFIG, ["127.0.0.1:41234"], alertmanager_url="http://127.0.0.1:41235"
    )
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "logstream"]
    assert job["static_configs"] == [{"targets": ["127.0.0.1:41234"]}]
    alertmanager = config["alerting"]["alertmanagers"][0]
    assert alertmanager["static_configs"] == [{"targets": ["127.0.0.1:41235"]}]
    assert config["rule_files"] == [str(RULES)]
    rendered = tmp_path / "prometheus.yml"
    rendered.write_text(yaml.safe_dump(config))
    checked = promtool("check", "config", rendered)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def fast_stall_rules(folder: Path) -> Path:
    """The shipped rules with only the stalled-query alert's threshold and wait shortened."""
    rules = yaml.safe_load(RULES.read_text())
    (stalled,) = [
        rule
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "LogstreamQueryStalled"
    ]
    assert stalled["expr"] == "query:logstream_seconds_since_progress > 300"
    stalled["expr"] = f"query:logstream_seconds_since_progress > {STALL_S}"
    stalled["for"] = "1s"
    path = folder / "logstream.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def our_alerts(prometheus: LocalPrometheus, name: str) -> list[dict]:
    return [
        alert
        for alert in prometheus.api("alerts")["alerts"]
        if alert["labels"].get("alertname") == name and alert["labels"].get("query") == QUERY
    ]


def value_of(prometheus: LocalPrometheus, expr: str) -> float | None:
    result = prometheus.api("query", query=expr)["result"]
    return float(result[0]["value"][1]) if result else None


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(0.25)
    pytest.fail(f"{what} did not happen within {timeout_s} s")


@pytest.mark.slow
def test_prometheus_scrapes_the_exporter_and_a_stalled_query_fires(tmp_path):
    metrics_port = free_port()
    exporter = status.start_metrics_server(metrics_port)
    assert exporter is not None
    prometheus = LocalPrometheus(
        tmp_path / "prometheus",
        metrics_targets=[f"127.0.0.1:{metrics_port}"],
        rule_files=[fast_stall_rules(tmp_path)],
        scrape_interval="1s",
        evaluation_interval="1s",
    )
    registry = status.TotalsRegistry()
    registry.update(QUERY, {"valid": 500, "quarantined": 5, "late": 2})
    listener = status.StatusListener(tmp_path / "status", registry, True, trigger_interval_s=2.0)
    stop_feeding = threading.Event()

    def feed() -> None:  # a live query: one progress event every half second
        while not stop_feeding.is_set():
            listener.onQueryProgress(progress_event(QUERY, "2026-11-25T13:05:00.000Z"))
            stop_feeding.wait(0.5)

    feeder = threading.Thread(target=feed, daemon=True)
    try:
        prometheus.start()
        assert prometheus.status().running
        feeder.start()
        selector = f'{{job="logstream", query="{QUERY}", pipeline="prom_live"}}'
        lag = wait_for(
            lambda: value_of(prometheus, f"logstream_kafka_lag_records{selector}"),
            15,
            "a scrape of the exporter",
        )
        assert lag == 15  # (100 - 90) + (45 - 40), as the listener read it from the progress
        assert value_of(prometheus, f'up{{job="logstream", instance="127.0.0.1:{metrics_port}"}}')
        assert value_of(prometheus, f"logstream_valid_records_total{selector}") == 500
        # the recording rules run: the budget is the exported trigger interval
        wait_for(
            lambda: value_of(
                prometheus, f'query:logstream_batch_budget_seconds{{query="{QUERY}"}}'
            ),
            10,
            "the batch budget recording rule",
        )
        time.sleep(STALL_S + 2)  # while progress flows the query is not stalled
        assert our_alerts(prometheus, "LogstreamQueryStalled") == []

        stop_feeding.set()
        feeder.join(5)
        stopped_at = time.time()
        firing = wait_for(
            lambda: [
                a for a in our_alerts(prometheus, "LogstreamQueryStalled") if a["state"] == "firing"
            ],
            STALL_S + 20,
            "the LogstreamQueryStalled alert",
        )
        assert time.time() - stopped_at >= STALL_S  # not before the threshold passed
        assert firing[0]["labels"]["kind"] == "stalled_query"
        assert firing[0]["labels"]["severity"] == "critical"
        assert firing[0]["annotations"]["summary"].startswith(f"query {QUERY} has made no progress")

        # the job gone: the scrape fails and `up` (what LogstreamPipelineDown reads) drops to 0
        exporter.shutdown()
        exporter.server_close()
        wait_for(lambda: value_of(prometheus, 'up{job="logstream"}') == 0, 10, "up going to 0")
    finally:
        stop_feeding.set()
        prometheus.stop()
        exporter.shutdown()
        exporter.server_close()
    assert not prometheus.status().running


def test_the_project_prometheus_scrapes_the_configured_metrics_port(tmp_path):
    settings = Settings.load(
        env={}, state_dir=tmp_path, metrics_port=41236, alertmanager_port=41237
    )
    prometheus = LocalPrometheus.for_settings(settings)
    assert prometheus.folder == tmp_path / "prometheus"
    assert prometheus.metrics_targets == ("127.0.0.1:41236",)
    assert prometheus.alertmanager_url == "http://127.0.0.1:41237"
    off = Settings.load(env={}, state_dir=tmp_path, metrics_port=0)
    with pytest.raises(ServiceError, match="LOGSTREAM_METRICS_PORT"):
        LocalPrometheus.for_settings(off)
