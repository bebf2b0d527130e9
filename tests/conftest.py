"""Shared fixtures: one local SparkSession and one real Kafka broker per test session.

Everything runs on loopback with free ports and temporary folders, and is stopped at the end.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Airflow reads its configuration at import time: isolate it before any test imports it.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="logstream-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ.setdefault("LOGSTREAM_SPARK_LOG_LEVEL", "ERROR")

import logging  # noqa: E402

logging.getLogger("py4j").setLevel(logging.WARNING)  # quiet shutdown chatter

from logstream.config import Settings  # noqa: E402
from logstream.kafka.broker import KafkaBroker  # noqa: E402


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session")
def settings(state_dir: Path) -> Settings:
    """Settings for the test session: temp state, free ports, a small local Spark."""
    return Settings.load(
        env={},
        state_dir=state_dir,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        airflow_port=free_port(),
        spark_master="local[2]",
        shuffle_partitions=2,
        spark_driver_memory="1g",
        topic_partitions=4,
    )


@pytest.fixture(scope="session")
def kafka_broker(settings: Settings) -> Iterator[KafkaBroker]:
    """A real single-node KRaft broker on free loopback ports, stopped after the session."""
    broker = KafkaBroker(settings)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def spark(settings: Settings):
    from logstream.runtime.spark import build_spark_session

    session = build_spark_session(
        "logstream-tests",
        settings,
        extra_conf={"spark.sql.streaming.noDataMicroBatches.enabled": "false"},
    )
    yield session
    session.stop()


@pytest.fixture
def topic(kafka_broker: KafkaBroker, settings: Settings, request: pytest.FixtureRequest) -> str:
    """A fresh topic (named after the test) with the session's partition count."""
    from logstream.kafka.admin import ensure_topics

    name = "t-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:100]
    ensure_topics(kafka_broker.bootstrap, [name], settings.topic_partitions)
    return name
