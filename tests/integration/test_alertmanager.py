"""A real Prometheus Alertmanager (Debian's prometheus-alertmanager), started on a free loopback
port with the shipped deploy/alertmanager/alertmanager.yml: what logstream posts is grouped,
inhibited, silenced and routed as that file says, and nothing is lost while it is down.

Expected labels, groups and messages are written by hand from the alerts the tests post.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from logstream.alerts import counters
from logstream.alerts.alertmanager import AlertmanagerAlertSink
from logstream.alerts.background import BackgroundAlertSink
from logstream.alerts.model import Alert
from logstream.alerts.outbox import Outbox
from logstream.alerts.routing import build_alert_sink
from logstream.config import PROJECT_ROOT, Settings
from logstream.ops.alertmanager import LocalAlertmanager
from tests.helpers import Receiver, alertmanager_test_config

SHIPPED = PROJECT_ROOT / "deploy" / "alertmanager"

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus-alertmanager") is None, reason="prometheus-alertmanager missing"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def am_settings(tmp_path: Path, hook: Receiver) -> Settings:
    config = alertmanager_test_config(tmp_path / "config", hook.url)
    return Settings.load(
        env={},
        state_dir=tmp_path / "state",
        alertmanager_port=_free_port(),
        alertmanager_config=str(config),
        alert_timeout_s=2.0,
        alert_retries=2,
        alert_outbox_retry_s=1,
    )


@pytest.fixture
def alertmanager(am_settings: Settings) -> Iterator[LocalAlertmanager]:
    manager = LocalAlertmanager(am_settings)
    manager.start()
    try:
        yield manager
    finally:
        manager.stop()


def _get(manager: LocalAlertmanager, path: str) -> list:
    with urllib.request.urlopen(f"{manager.url}{path}", timeout=5) as answer:
        return json.load(answer)


def _post(manager: LocalAlertmanager, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{manager.url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)


def _wait(check: Callable[[], object], timeout_s: float = 15.0) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _by_key(manager: LocalAlertmanager) -> dict[str, dict]:
    return {a["labels"]["dedup_key"]: a for a in _get(manager, "/api/v2/alerts")}


def spike(key: str, service: str, severity: str = "critical") -> Alert:
    return Alert(key, "error_rate_spike", severity, f"error rate up on {service}", service=service)


def test_the_shipped_config_passes_amtool_check_config():
    result = subprocess.run(
        ["amtool", "check-config", str(SHIPPED / "alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout and "1 templates" in result.stdout


def test_it_listens_on_loopback_only_and_stops_cleanly(am_settings):
    manager = LocalAlertmanager(am_settings)
    status = manager.start()
    try:
        assert status.running and status.url == f"http://127.0.0.1:{am_settings.alertmanager_port}"
        listening = subprocess.run(
            ["ss", "-ltnpH"], capture_output=True, text=True, check=True
        ).stdout
        ours = [line for line in listening.splitlines() if f"pid={status.pid}," in line]
        assert [line.split()[3] for line in ours] == [f"127.0.0.1:{am_settings.alertmanager_port}"]
        assert manager.start().pid == status.pid  # idempotent
    finally:
        assert manager.stop() is True
    assert manager.status().running is False
    assert manager.stop() is False


def test_posted_alerts_are_listed_with_sanitized_labels_and_grouped_by_kind_and_service(
    alertmanager, am_settings
):
    sink = AlertmanagerAlertSink.from_settings(am_settings)  # plain `alertmanager`: the local one
    hostile = "<script>alert(1)</script>\x1b[31m\nX" + "y" * 300
    for alert in (
        spike("anomaly:a1", "api"),
        spike("anomaly:a2", "api"),
        spike("anomaly:w1", "web", "warning"),
        Alert("anomaly:d1", "ddos_suspect", "warning", "10.0.0.9: 500 requests"),
        Alert("anomaly:h1", "error_rate_spike", "critical", "hostile", service=hostile),
    ):
        assert sink.send(alert) is True

    listed = _by_key(alertmanager)
    assert set(listed) == {"anomaly:a1", "anomaly:a2", "anomaly:w1", "anomaly:d1", "anomaly:h1"}
    assert listed["anomaly:a1"]["labels"] == {
        "alertname": "LogstreamErrorRateSpike",
        "kind": "error_rate_spike",
        "service": "api",
        "severity": "critical",
        "category": "data",
        "dedup_key": "anomaly:a1",
    }
    assert listed["anomaly:a1"]["annotations"]["summary"] == "error rate up on api"
    label = listed["anomaly:h1"]["labels"]["service"]
    assert len(label) == 200 and label.startswith("<script>alert(1)</script>[31m Xyyy")
    assert not re.search(r"[\x00-\x1f\x7f]", label)

    groups = {
        tuple(sorted(g["labels"].items())): (
            g["receiver"]["name"],
            sorted(a["labels"]["dedup_key"] for a in g["alerts"]),
        )
        for g in _get(alertmanager, "/api/v2/alerts/groups")
    }
    assert groups == {
        (("kind", "error_rate_spike"), ("service", "api")): (
            "oncall-page",
            ["anomaly:a1", "anomaly:a2"],
        ),
        (("kind", "error_rate_spike"), ("service", "web")): ("team-slack", ["anomaly:w1"]),
        (("kind", "ddos_suspect"),): ("team-slack", ["anomaly:d1"]),
        (("kind", "error_rate_spike"), ("service", label)): ("oncall-page", ["anomaly:h1"]),
    }


def test_a_group_reaches_slack_together_with_hostile_text_escaped(alertmanager, am_settings, hook):
    sink = AlertmanagerAlertSink.from_settings(am_settings)
    for key in ("anomaly:s1", "anomaly:s2", "anomaly:s3"):
        sink.send(
            Alert(key, "ddos_suspect", "warning", "<!channel> see <https://evil.example|here> &")
        )

    def slack_messages() -> list[dict]:
        return [json.loads(r["body"]) for r in hook.requests if r["path"] == "/slack"]

    # one group: its first message comes after group_wait with what arrived by then, an
    # update after group_interval if the three were posted more slowly than that
    assert _wait(lambda: any("FIRING:3" in m["attachments"][0]["title"] for m in slack_messages()))
    time.sleep(1.5)  # one group_wait more: nothing else may arrive for this group
    messages = slack_messages()
    assert 1 <= len(messages) <= 2
    assert {m["attachments"][0]["title"].split("] ")[1] for m in messages} == {
        "LogstreamDdosSuspect"
    }
    attachment = messages[-1]["attachments"][0]
    assert attachment["title"] == "[FIRING:3] LogstreamDdosSuspect"
    escaped = "&lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp;"
    assert attachment["text"].count(escaped) == 3
    assert "<!channel>" not in json.dumps(messages)


def test_pipeline_down_inhibits_data_alerts_only(alertmanager, am_settings):
    sink = AlertmanagerAlertSink.from_settings(am_settings)
    sink.send(spike("anomaly:i1", "api"))
    sink.send(Alert("quality:q1", "quality_failure", "critical", "row counts off"))
    assert _by_key(alertmanager)["anomaly:i1"]["status"]["state"] == "active"

    sink.send(Alert("supervisor:restart_loop:1", "restart_loop", "critical", "job keeps failing"))

    listed = _by_key(alertmanager)
    down = listed["supervisor:restart_loop:1"]
    assert down["labels"]["alertname"] == "LogstreamPipelineDown"
    assert down["status"]["state"] == "active"
    assert listed["anomaly:i1"]["status"]["state"] == "suppressed"
    assert listed["anomaly:i1"]["status"]["inhibitedBy"] == [down["fingerprint"]]
    assert listed["quality:q1"]["status"]["state"] == "active"  # not a data alert


def test_a_silence_created_through_the_api_silences(alertmanager, am_settings):
    sink = AlertmanagerAlertSink.from_settings(am_settings)
    sink.send(spike("anomaly:x1", "checkout"))
    sink.send(spike("anomaly:x2", "search"))
    now = datetime.now(UTC)
    silence = _post(
        alertmanager,
        "/api/v2/silences",
        {
            "matchers": [{"name": "service", "value": "checkout", "isRegex": False}],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "test",
            "comment": "maintenance",
        },
    )

    listed = _by_key(alertmanager)
    assert listed["anomaly:x1"]["status"]["state"] == "suppressed"
    assert listed["anomaly:x1"]["status"]["silencedBy"] == [silence["silenceID"]]
    assert listed["anomaly:x2"]["status"]["state"] == "active"


def test_outbox_spills_while_alertmanager_is_down_and_delivers_when_it_is_back(am_settings):
    counters.reset()
    manager = LocalAlertmanager(am_settings)
    sent = [spike(f"anomaly:o{n}", "api") for n in range(6)]

    # down: the first alert fails (and spills), the queue of 1 overflows into the outbox
    background = BackgroundAlertSink(build_alert_sink("alertmanager", am_settings), max_queued=1)
    assert [background.send(alert) for alert in sent] == [None] * 6
    assert background.close(timeout_s=10.0) == 0
    outbox = Outbox.from_settings(am_settings)
    assert sorted(e["alert"]["dedup_key"] for e in outbox.entries()) == sorted(
        a.dedup_key for a in sent
    )
    totals = counters.snapshot()
    assert totals["logstream_alerts_spilled_total"] == 6
    assert totals["logstream_alerts_delivered_total"] == 0
    assert totals["logstream_alerts_delivery_failures_total"] >= 1
    assert totals["logstream_alerts_dropped_total"] == 0

    # up again, and a new process (a restarted job) delivers the outbox
    manager.start()
    try:
        restarted = BackgroundAlertSink(build_alert_sink("alertmanager", am_settings))
        try:
            listed = _wait(lambda: len(_by_key(manager)) == 6 and _by_key(manager))
            assert set(listed) == {a.dedup_key for a in sent}
            assert _wait(lambda: not outbox.entries())
        finally:
            assert restarted.close(timeout_s=5.0) == 0
        totals = counters.snapshot()
        assert totals["logstream_alerts_redelivered_total"] == 6
        assert totals["logstream_alerts_outbox_pending"] == 0
        assert totals["logstream_alerts_dropped_total"] == 0
    finally:
        manager.stop()


def test_the_cli_starts_it_on_a_free_port_it_keeps_and_stops_it(
    am_settings, tmp_path, monkeypatch, capsys
):
    from logstream.cli.main import main

    state = tmp_path / "cli-state"
    for name in list(os.environ):
        if name.startswith("LOGSTREAM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOGSTREAM_STATE_DIR", str(state))
    monkeypatch.setenv("LOGSTREAM_ALERTMANAGER_CONFIG", am_settings.alertmanager_config)
    try:
        assert main(["alertmanager", "start"]) == 0
        port = int((state / "alertmanager" / "port").read_text())
        assert port not in (9093, 9094)
        out = capsys.readouterr().out.splitlines()
        assert f"alertmanager: http://127.0.0.1:{port}" in out
        assert main(["alertmanager", "status"]) == 0
        assert main(["alertmanager", "stop"]) == 0
        assert main(["alertmanager", "status"]) == 3
        assert main(["alertmanager", "start"]) == 0  # again: the same port
        assert int((state / "alertmanager" / "port").read_text()) == port
    finally:
        main(["alertmanager", "stop"])
