"""The durable outbox (logstream.alerts.outbox): what is spilled is on disk, settles as the
worker delivers, and is never dropped without an ERROR and a count."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace

from logstream.alerts import counters
from logstream.alerts.model import Alert
from logstream.alerts.outbox import Outbox, outbox_path


def test_spilled_alerts_are_json_lines_on_disk(tmp_path, alert, alert_settings):
    counters.reset()
    outbox = Outbox.from_settings(alert_settings)
    assert outbox.path == outbox_path(alert_settings) == tmp_path / "alerts" / "outbox.jsonl"

    assert outbox.spill(alert, None, "queue_full") is True
    assert outbox.spill(replace(alert, dedup_key="anomaly:2"), ["slack"], "delivery_failed")

    lines = [json.loads(line) for line in outbox.path.read_text().splitlines()]
    assert [
        (e["alert"]["dedup_key"], e["channels"], e["reason"], e["attempts"]) for e in lines
    ] == [
        ("anomaly:abc123", None, "queue_full", 0),
        ("anomaly:2", ["slack"], "delivery_failed", 0),
    ]
    assert Alert.from_dict(lines[0]["alert"]) == alert
    # a new process (a restart) finds them
    assert [e["alert"]["dedup_key"] for e in Outbox(outbox.path).entries()] == [
        "anomaly:abc123",
        "anomaly:2",
    ]
    assert counters.snapshot()["logstream_alerts_spilled_total"] == 2
    assert counters.snapshot()["logstream_alerts_outbox_pending"] == 2


def test_settle_removes_delivered_narrows_channels_and_keeps_new_spills(tmp_path, alert):
    outbox = Outbox(tmp_path / "outbox.jsonl")
    outbox.spill(alert, None)
    outbox.spill(replace(alert, dedup_key="b"), ["slack", "email"])
    first, second = outbox.entries()
    outbox.spill(replace(alert, dedup_key="c"))  # spilled while the round ran

    assert outbox.settle({first["id"]}, {second["id"]: ["email"]}) == 2

    left = outbox.entries()
    assert [(e["alert"]["dedup_key"], e["channels"], e["attempts"]) for e in left] == [
        ("b", ["email"], 1),
        ("c", None, 0),
    ]


def test_a_full_outbox_refuses_with_an_error_and_a_count(tmp_path, alert, caplog):
    counters.reset()
    caplog.set_level(logging.ERROR, logger="logstream")
    outbox = Outbox(tmp_path / "outbox.jsonl", max_entries=2)
    assert outbox.spill(replace(alert, dedup_key="a")) is True
    assert outbox.spill(replace(alert, dedup_key="b")) is True

    assert outbox.spill(replace(alert, dedup_key="c")) is False

    assert counters.snapshot()["logstream_alerts_dropped_total"] == 1
    (error,) = [r.getMessage() for r in caplog.records]
    assert "error_rate_spike c" in error and "is full (2 alerts" in error


def test_alerts_past_the_age_limit_are_dropped_loudly(tmp_path, alert, caplog):
    counters.reset()
    caplog.set_level(logging.ERROR, logger="logstream")
    outbox = Outbox(tmp_path / "outbox.jsonl", max_age_s=60)
    outbox.spill(replace(alert, dedup_key="old"))
    outbox.spill(replace(alert, dedup_key="new"))
    lines = outbox.path.read_text().splitlines()
    aged = json.loads(lines[0]) | {"spilled_at": time.time() - 61}
    outbox.path.write_text(json.dumps(aged) + "\n" + lines[1] + "\n")

    assert outbox.settle(set(), {}) == 1

    assert [e["alert"]["dedup_key"] for e in outbox.entries()] == ["new"]
    assert counters.snapshot()["logstream_alerts_dropped_total"] == 1
    assert any("error_rate_spike old" in r.getMessage() for r in caplog.records)


def test_a_line_cut_by_a_crash_is_skipped(tmp_path, alert):
    outbox = Outbox(tmp_path / "outbox.jsonl")
    outbox.spill(alert)
    with outbox.path.open("a") as out:
        out.write('{"id": "x", "alert": {"dedup_')
    assert [e["alert"]["dedup_key"] for e in outbox.entries()] == ["anomaly:abc123"]
    outbox.spill(replace(alert, dedup_key="after"))
    # the cut line ended without a newline: the next append must still be readable
    assert "after" in [e["alert"]["dedup_key"] for e in outbox.entries()]
