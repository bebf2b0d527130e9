"""The Grafana dashboard and its provisioning (deploy/grafana) and the Prometheus rules it reads:
the JSON is valid, every query parses, and every metric a query or rule names is one the job's
exporter serves (read from its registry) or a recording rule that resolves to such metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from logstream.config import PROJECT_ROOT
from logstream.stream import status

DEPLOY = PROJECT_ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "logstream.json"
RULES = DEPLOY / "prometheus" / "rules" / "logstream.rules.yml"
#: Series Prometheus itself writes, not an exporter: the scrape's health and the alerts' state.
PROMETHEUS_OWN = {"up", "ALERTS"}
#: PromQL words that look like identifiers (aggregations may precede "by (...)", not "(").
_WORDS = {
    *("by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"),
    *("and", "or", "unless", "atan2", "sum", "min", "max", "avg", "group", "stddev", "stdvar"),
    *("count", "count_values", "bottomk", "topk", "quantile", "inf", "nan"),
}
_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions (followed
    by "("), keywords, label names (in braces or by/on lists), numbers or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\w+", " ", text)
    found = re.findall(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", text)
    return {name for name in found if name.lower() not in _WORDS}


def test_metric_names_reads_promql_as_prometheus_does():
    expr = (
        'sum by (pipeline, le) (rate(a_total{job="x", le=~"1e6|b"}[5m] offset 1h)) '
        "/ on (query) group_left (pipeline) b:rec:rate5m * 1e6 > bool 2 or time() - c"
    )
    assert metric_names(expr) == {"a_total", "b:rec:rate5m", "c"}


def served_names() -> set[str]:
    """Every sample name the exporter serves, from its registry's families and their types."""
    suffixes = {
        "counter": ("_total",),
        "summary": ("_sum", "_count"),
        "histogram": ("_bucket", "_sum", "_count"),
    }
    names = set()
    for family in status.metrics_registry().collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def recording_rules() -> dict[str, str]:
    rules = yaml.safe_load(RULES.read_text())
    return {
        rule["record"]: rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def unresolved(names: set[str], served: set[str], recorded: dict[str, str]) -> set[str]:
    """The names that are neither served nor (through recording rules) made of served metrics."""
    missing = set()
    for name in names - served - PROMETHEUS_OWN:
        if name in recorded:
            missing |= unresolved(metric_names(recorded[name]), served, recorded)
        else:
            missing.add(name)
    return missing


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panel_queries(board: dict) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_the_exporter_serves_the_metrics_the_issue_asks_for():
    served = served_names()
    for name in (
        "logstream_kafka_lag_records",
        "logstream_batch_duration_seconds_sum",
        "logstream_input_rows_per_second",
        "logstream_processed_rows_per_second",
        "logstream_last_progress_timestamp_seconds",
        "logstream_error_records_total",
        "logstream_quarantined_records_total",
        "logstream_rows_dropped_by_watermark_total",
        "logstream_late_records_total",
        "logstream_process_start_time_seconds",
    ):
        assert name in served
    assert "logstream_alerts_dropped_total" in served  # the alert path's counters too
    # Prometheus' conventions: one prefix; a unit, _total or _up in each query metric's name
    assert all(n.startswith("logstream_") for n in served)
    units = ("_seconds", "_records", "_rows", "_bytes", "_total", "_per_second", "_up")
    queries = [
        family.name + ("_total" if family.type == "counter" else "")
        for family in status.QueryMetrics().collect()
    ]
    assert [name for name in queries if not name.endswith(units)] == []


def test_dashboard_is_valid_and_complete():
    board = dashboard()
    assert board["uid"] and board["title"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    titles = {panel["title"] for panel in board["panels"]}
    # the seed tutorial's panels, plus pipeline health
    for title in (
        "System health score",
        "Error rate (status >= 400)",
        "Request volume (records/min)",
        "Response time (average)",
        "Anomalies detected",
        "Processing latency (event-time lag)",
        "Kafka lag (records)",
        "Batch duration",
        "Seconds since last progress",
        "Job restarts (24 h)",
        "Firing alerts",
    ):
        assert title in titles
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert all(t["datasource"]["uid"] == datasource["uid"] for t in panel["targets"])


def test_every_panel_query_names_metrics_the_exporter_serves():
    served, recorded = served_names(), recording_rules()
    for title, expr in panel_queries(dashboard()):
        names = metric_names(expr)
        assert names, (title, expr)
        assert unresolved(names, served, recorded) == set(), (title, expr)
    for variable in dashboard()["templating"]["list"]:
        (metric,) = re.findall(r"label_values\((\w+),", variable["definition"])
        assert metric in served


def test_every_rule_names_metrics_the_exporter_serves():
    served, recorded = served_names(), recording_rules()
    rules = yaml.safe_load(RULES.read_text())
    for rule in (rule for group in rules["groups"] for rule in group["rules"]):
        name = rule.get("record") or rule["alert"]
        assert unresolved(metric_names(rule["expr"]), served, recorded) == set(), name


def test_every_panel_query_parses(tmp_path):
    """promtool parses each query, written as a recording rule (Grafana's variables filled in)."""
    rules = []
    for index, (_, expr) in enumerate(panel_queries(dashboard())):
        for variable, value in _GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"panel:query_{index}", "expr": expr.replace("$pipeline", ".*")})
    if shutil.which("promtool") is None:
        pytest.fail(
            "promtool is missing: install Debian's prometheus (apt-packages.txt, make setup)"
        )
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_provider_loads_the_dashboards_folder():
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/logstream.yml").read_text()
    )
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    mounted = {target: source for source, target in mounts.items()}
    path = provider["providers"][0]["options"]["path"]
    assert Path(PROJECT_ROOT, mounted[path]).resolve() == DASHBOARD.parent
    assert mounted["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"


@pytest.mark.parametrize("service", ["prometheus", "grafana"])
def test_compose_services_are_pinned_private_and_checked(service):
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    spec = compose["services"][service]
    tag = spec["image"].partition(":")[2]
    assert tag and tag != "latest" and re.match(r"v?\d+\.\d+\.\d+$", tag), spec["image"]
    assert spec["healthcheck"]["test"]
    # they live in the network namespace of the Spark drivers (the job's exporter listens on
    # its loopback only); whatever that namespace publishes is on loopback only
    owner = spec["network_mode"].removeprefix("service:")
    assert owner in compose["services"] and owner != service, spec["network_mode"]
    assert compose["services"]["spark-worker-1"]["network_mode"] == f"service:{owner}"
    for port in compose["services"][owner]["ports"]:
        assert port.startswith("127.0.0.1:"), port
    if service == "grafana":
        password = spec["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
        assert password.startswith("${GRAFANA_ADMIN_PASSWORD:?"), "no default password"
        assert spec["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
