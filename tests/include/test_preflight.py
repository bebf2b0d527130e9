"""Preflight: passes with a broker, names the fix without one."""

from __future__ import annotations

import pytest

from logstream.errors import ServiceError
from logstream.preflight import run_preflight
from tests.conftest import free_port


def test_preflight_passes_with_a_running_broker(settings, kafka_broker):
    report = run_preflight(settings)
    assert report.kafka_reachable
    assert report.jars["kafka-broker"] > 10 and report.jars["spark-kafka"] > 2
    assert report.jars["logstream-spark"] == 1


def test_preflight_names_the_fix_when_kafka_is_down(settings):
    with pytest.raises(ServiceError, match="logstream kafka start"):
        run_preflight(settings.replace(kafka_port=free_port()))
