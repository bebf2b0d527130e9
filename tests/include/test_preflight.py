"""Preflight: passes with a broker, names the fix without one, and is due only before a start."""

from __future__ import annotations

import pytest

from logstream.errors import MissingDependencyError, ServiceError
from logstream.runtime.preflight import preflight_due, run_preflight
from tests.conftest import free_port


def test_preflight_passes_with_a_running_broker(settings, kafka_broker):
    report = run_preflight(settings)
    assert report.kafka_reachable
    assert report.jars["kafka-broker"] > 10 and report.jars["spark-kafka"] > 2


def test_preflight_names_the_fix_when_kafka_is_down(settings):
    with pytest.raises(ServiceError, match="logstream kafka start"):
        run_preflight(settings.replace(kafka_port=free_port()))


def test_preflight_names_the_fix_when_logstream_spark_jar_is_missing(settings, tmp_path):
    # the Maven bundles are there, logstream's own jar was never built
    for bundle in ("kafka-broker", "spark-kafka"):
        (tmp_path / bundle).symlink_to(settings.jars_dir / bundle)
    with pytest.raises(MissingDependencyError, match="make jars"):
        run_preflight(settings.replace(jars_dir=tmp_path), require_kafka=False)


def test_preflight_checks_the_bootstrap_servers_the_job_uses(settings, kafka_broker):
    """An external cluster in kafka_bootstrap_servers is what counts, not kafka_host:port."""
    dead = f"127.0.0.1:{free_port()}"
    external = settings.replace(
        kafka_port=free_port(), kafka_bootstrap_servers=f"{dead},{kafka_broker.bootstrap}"
    )
    assert run_preflight(external).kafka_reachable
    with pytest.raises(ServiceError, match="check LOGSTREAM_KAFKA_BOOTSTRAP_SERVERS"):
        run_preflight(settings.replace(kafka_bootstrap_servers=dead))


@pytest.mark.parametrize(
    ("action", "needs_start", "due"),
    [
        ("supervise", True, True),  # stopped, failed or stalled: a (re)start is coming
        ("supervise", False, False),  # running, starting or held: nothing to start
        ("start", False, True),  # an operator's start, e.g. of a held job
        ("start", True, True),
        ("stop", True, False),  # stopping needs neither Kafka nor the jars
        ("stop", False, False),
    ],
)
def test_preflight_is_due_only_when_the_job_may_be_started(action, needs_start, due):
    assert preflight_due(action, needs_start) is due
