"""Small test helpers shared across test modules."""

from __future__ import annotations

import json
from collections.abc import Iterable

from kafka import KafkaProducer


def produce_json(bootstrap: str, topic: str, records: Iterable[dict], key_field: str) -> int:
    """Send each record as JSON with ``record[key_field]`` as the key; returns the count sent."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        key_serializer=lambda key: str(key).encode(),
        value_serializer=lambda value: json.dumps(value).encode(),
        linger_ms=20,
        batch_size=256 * 1024,
        acks="all",
    )
    sent = 0
    for record in records:
        producer.send(topic, key=record[key_field], value=record)
        sent += 1
    producer.flush()
    producer.close()
    return sent


def produce_with_ids(bootstrap: str, records: Iterable) -> list[str]:
    """Send generator records and return each one's ``event_id`` (``topic:partition:offset``),
    taken from the broker's acknowledgement: how a test links its truth to the stored rows."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024, acks="all"
    )
    futures = [producer.send(r.topic, key=r.key, value=r.value) for r in records]
    producer.flush()
    ids = []
    for future in futures:
        metadata = future.get(timeout=60)
        ids.append(f"{metadata.topic}:{metadata.partition}:{metadata.offset}")
    producer.close()
    return ids
