"""Topic administration with kafka-python."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError


def ensure_topics(bootstrap: str, topics: list[str], partitions: int) -> list[str]:
    """Create each missing topic with ``partitions`` partitions; returns the ones created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="logstream-admin")
    try:
        existing = set(admin.list_topics())
        missing = [topic for topic in topics if topic not in existing]
        if missing:
            new_topics = [NewTopic(t, partitions, replication_factor=1) for t in missing]
            with contextlib.suppress(TopicAlreadyExistsError):  # raced with another creator
                admin.create_topics(new_topics)
        return missing
    finally:
        admin.close()
