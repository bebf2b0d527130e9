"""Kafka lag against the checkpoint, measured now on a real broker: what tells a stall from an
idle stream."""

from __future__ import annotations

import time

from logstream.supervisor.health import inspect
from tests.include.supervisor.support import (
    lookalike,
    offsets_file,
    record_for,
    status,
    write,
)


def test_stall_uses_kafka_lag_measured_now(run, processes, kafka_broker, topic, tmp_path):
    """The last status said lag 0, but Kafka now holds records past the committed offsets."""
    from tests.helpers import produce_json

    run = run.replace(logs_topic=topic)  # run shares the session broker's port
    folder = tmp_path / "checkpoints" / "ingest_logs"
    write(folder / "metadata", '{"id":"d2c0eab7-812f-4dbe-87df-d68f0c90a142"}')
    zeros = {topic: {str(p): 0 for p in range(run.topic_partitions)}}
    write(folder / "offsets" / "0", offsets_file(0, zeros))
    write(folder / "commits" / "0", 'v1\n{"nextBatchWatermarkMs":0}')
    produce_json(kafka_broker.bootstrap, topic, [{"k": n} for n in range(10)], "k")
    job = lookalike(run)
    processes.append(job)
    record_for(run, job.pid, time.time() - 1_000)
    status(run, "ingest_logs", age_s=400, kafka_lag=0)

    health = inspect(run)

    assert health.state == "stalled" and "Kafka lag is 10" in health.reason, health
