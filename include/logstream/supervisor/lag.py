"""How far behind Kafka the job's ingestion is: the records a query has not committed yet.

Health uses it to tell a stall (old progress while Kafka holds records) from an idle stream (old
progress, nothing to read). Measured now from the broker's end offsets and the checkpoint's last
committed offsets where both can be read; otherwise the last value the job's status files report.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from logstream.config import Settings
from logstream.errors import LogstreamError
from logstream.supervisor.checkpoints import (
    CheckpointReport,
    CheckpointStorage,
    expected_topic,
    validate_checkpoint,
)

log = logging.getLogger(__name__)


def kafka_end_offsets(settings: Settings, topic: str, attempts: int = 2) -> dict[str, int] | None:
    """The topic's latest offsets per partition, or None if Kafka cannot tell right now (no
    broker, or no partition metadata yet: an empty answer must not read as "no lag")."""
    from kafka import KafkaConsumer, TopicPartition

    for attempt in range(1, attempts + 1):
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=settings.kafka_bootstrap,
                enable_auto_commit=False,
                request_timeout_ms=10_000,
                client_id="logstream-supervisor",
            )
        except Exception as exc:  # noqa: BLE001 - an unreachable broker makes lag unknown
            log.info("kafka not reachable for lag", extra={"error": str(exc), "try": attempt})
            continue
        try:
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
                if len(ends) == len(partitions):
                    return {str(tp.partition): int(offset) for tp, offset in ends.items()}
            log.info("no partition metadata for lag", extra={"topic": topic, "try": attempt})
        except Exception as exc:  # noqa: BLE001
            log.info("kafka end offsets unavailable", extra={"topic": topic, "error": str(exc)})
        finally:
            consumer.close()
    return None


def kafka_lag_now(settings: Settings, report: CheckpointReport, topic: str) -> int | None:
    """Records in ``topic`` the query has not committed yet (Kafka end offsets now minus the
    checkpoint's latest committed offsets); None when either side is unknown."""
    if report.committed_offsets is None:
        return None
    ends = kafka_end_offsets(settings, topic)
    if ends is None:
        return None
    done = report.committed_offsets.get(topic, {})
    return sum(max(0, end - int(done.get(partition, 0))) for partition, end in ends.items())


def job_kafka_lag(settings: Settings, pipelines: Sequence[str], current: dict) -> int | None:
    """Kafka records the job's ingestion has not committed: measured now where the checkpoint
    and the broker can be read, else the last value ``current`` (this run's status files by
    query name) reports. None when no pipeline's lag is known."""
    total: int | None = None
    for pipeline in pipelines:
        query = f"ingest_{pipeline}"
        topic = expected_topic(settings, query)
        lag = None
        with contextlib.suppress(LogstreamError, OSError, ImportError, ValueError):
            storage = CheckpointStorage(settings.checkpoint_root.rstrip("/"), settings)
            path = f"{storage.root}/{query}"
            if topic and storage.exists(path):
                lag = kafka_lag_now(
                    settings, validate_checkpoint(storage, path, query, topic), topic
                )
        if lag is None:
            lag = (current.get(query) or {}).get("kafka_lag")
        if lag is not None:
            total = (total or 0) + int(lag)
    return total
