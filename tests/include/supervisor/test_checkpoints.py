"""The checkpoint gate: valid checkpoints pass with their committed Kafka offsets; a corrupt or
incompatible one is refused with the file, the problem and the fix, and is never modified."""

from __future__ import annotations

import pytest

from logstream.supervisor.actions import check_checkpoints
from logstream.supervisor.checkpoints import CheckpointError, validate_checkpoints
from tests.include.supervisor.support import (
    alerts,
    kafka_checkpoint,
    metrics_checkpoint,
    snapshot,
    write,
)


def test_valid_checkpoints_pass_and_report_committed_offsets(run, tmp_path):
    root = tmp_path / "checkpoints"
    kafka_checkpoint(root, "logs-a")
    metrics_checkpoint(root)
    (root / "metrics_new_query").mkdir()  # created, nothing written yet: a fresh query

    reports = {r.query: r for r in validate_checkpoints(run)}

    assert set(reports) == {"ingest_logs", "metrics_system_health", "metrics_new_query"}
    ingest = reports["ingest_logs"]
    assert (ingest.latest_batch, ingest.committed_batch) == (2, 1)
    assert ingest.committed_offsets == {"logs-a": {"0": 200, "1": 100}}  # batch 1's offsets
    assert reports["metrics_system_health"].committed_offsets is None
    assert reports["metrics_new_query"].query_id is None


def test_missing_checkpoint_root_is_a_first_start(run):
    assert validate_checkpoints(run) == []


@pytest.mark.parametrize(
    ("damage", "file", "words"),
    [
        (lambda f: write(f / "offsets" / "2", b"\x8f\x00garbage"), "offsets/2", "not UTF-8"),
        (lambda f: write(f / "offsets" / "2", "garbage"), "offsets/2", "log version"),
        (lambda f: write(f / "offsets" / "2", 'v1\n{"batchWat'), "offsets/2", "line 2"),
        (lambda f: write(f / "offsets" / "1", "v1\n{}"), "offsets/1", "expected 3+"),
        (lambda f: write(f / "commits" / "0", "v1\nnot json"), "commits/0", "not JSON"),
        (lambda f: (f / "metadata").unlink(), "metadata", "new id"),
        (lambda f: write(f / "metadata", '{"noid": 1}'), "metadata", "no query id"),
        (lambda f: write(f / "logstream_state" / "2.json", "{"), "logstream_state/2.json", "JSON"),
    ],
)
def test_corrupt_checkpoint_is_refused_with_file_and_fix(run, tmp_path, damage, file, words):
    folder = kafka_checkpoint(tmp_path / "checkpoints", "logs-a")
    damage(folder)
    before = snapshot(folder)

    with pytest.raises(CheckpointError) as caught:
        check_checkpoints(run)

    message = str(caught.value)
    assert f"{folder}/{file}" in message and words in message
    assert "is corrupt" in message
    assert f"mv {folder} {folder}.broken-" in message and "backup" in message
    assert snapshot(folder) == before, "the checkpoint was modified"
    (alert,) = alerts(run)
    assert alert["kind"] == "checkpoint_invalid" and alert["severity"] == "critical"
    assert alert["details"]["file"] == f"{folder}/{file}"


def test_checkpoint_of_another_topic_is_incompatible(run, tmp_path):
    folder = kafka_checkpoint(tmp_path / "checkpoints", "logs-old")
    with pytest.raises(CheckpointError, match="incompatible") as caught:
        validate_checkpoints(run)
    assert "['logs-old']" in str(caught.value) and "'logs-a'" in str(caught.value)
    assert f"{folder}/offsets/2" in str(caught.value)
