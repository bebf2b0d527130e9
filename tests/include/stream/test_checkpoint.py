"""What the handler reads from its query's checkpoint (logstream.stream.checkpoint): a folder
written by hand in Spark's format (a ``metadata`` JSON line; ``offsets/<n>`` as ``v1`` and JSON
lines, the first with the batch's timestamp)."""

from __future__ import annotations

import json

import pytest

from logstream.storage.fs import HadoopFS
from logstream.stream.checkpoint import QueryCheckpoint, checkpoint_path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "ingest_logs"
    (root / "offsets").mkdir(parents=True)
    (root / "metadata").write_text('{"id":"d2c0eab7-812f-4dbe-87df-d68f0c90a142"}\n')
    meta = {"batchWatermarkMs": 0, "batchTimestampMs": 1_772_445_600_000, "conf": {}}
    (root / "offsets" / "4").write_text(f"v1\n{json.dumps(meta)}\n{json.dumps({'logs': {}})}")
    (root / "offsets" / "5").write_text("v1\n")
    return root


def test_the_checkpoint_of_a_query_is_named_after_it(settings):
    run = settings.replace(checkpoint_root="/data/checkpoints/")
    assert checkpoint_path(run, "ingest_logs") == "/data/checkpoints/ingest_logs"


def test_the_query_id_is_the_first_eight_characters_of_the_metadata_id(spark, folder):
    assert QueryCheckpoint(HadoopFS(spark), str(folder)).query_id() == "d2c0eab7"


def test_a_batch_time_is_the_offset_log_timestamp(spark, folder):
    assert QueryCheckpoint(HadoopFS(spark), str(folder)).batch_time_ms(4) == 1_772_445_600_000


def test_a_missing_timestamp_or_metadata_is_an_error(spark, folder):
    checkpoint = QueryCheckpoint(HadoopFS(spark), str(folder))
    with pytest.raises(RuntimeError, match="offsets/5 has no batch timestamp"):
        checkpoint.batch_time_ms(5)
    with pytest.raises(RuntimeError, match="offsets/6 has no batch timestamp"):
        checkpoint.batch_time_ms(6)
    (folder / "metadata").unlink()
    with pytest.raises(RuntimeError, match="has no metadata file yet"):
        checkpoint.query_id()
