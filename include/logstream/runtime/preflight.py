"""Preflight checks an operator (or the supervisor DAG) runs before starting the stream: Java, the
cached jars and the Kafka bootstrap servers the job will use."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from logstream.config import Settings
from logstream.errors import LogstreamError, ServiceError
from logstream.runtime.jars import SPARK_BUNDLES, bundle_jars, udf_jar
from logstream.runtime.java import find_java
from logstream.runtime.server import port_open


@dataclass(frozen=True)
class PreflightReport:
    java: str
    jars: dict[str, int]
    kafka_bootstrap: str
    kafka_reachable: bool

    def as_dict(self) -> dict:
        return asdict(self)


def bootstrap_addresses(settings: Settings) -> list[tuple[str, int]]:
    """The (host, port) pairs the job connects to: ``kafka_bootstrap_servers`` when set (an
    external cluster), else the local broker's listener."""
    addresses = []
    for server in settings.kafka_bootstrap.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not port.isdigit():
            raise ServiceError(
                f"Kafka bootstrap server {server.strip()!r} is not host:port; "
                "fix LOGSTREAM_KAFKA_BOOTSTRAP_SERVERS"
            )
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def preflight_due(action: str, needs_start: bool) -> bool:
    """Whether a supervisor step should run preflight: only when it may (re)start the job, that is
    an operator's ``start``, or a scheduled ``supervise`` of a job that is stopped, failed or
    stalled (``needs_start``). A running or held job, or a ``stop``, does not depend on Java, the
    jars or Kafka being in place, so a broken environment does not fail those runs."""
    return action == "start" or (action == "supervise" and needs_start)


def run_preflight(settings: Settings, require_kafka: bool = True) -> PreflightReport:
    """Check Java, the cached jars and (optionally) that one of the Kafka bootstrap servers the
    job will use answers; raise a clear error."""
    java = find_java()
    # what the job runs with: Spark's connectors and the broker (not the test servers' jars)
    jars = {
        bundle: len(bundle_jars(settings, bundle)) for bundle in (*SPARK_BUNDLES, "kafka-broker")
    }
    udf_jar(settings)  # raises, naming the fix, when logstream's own jar was never built
    jars["logstream-spark"] = 1
    reachable = any(port_open(host, port) for host, port in bootstrap_addresses(settings))
    if require_kafka and not reachable:
        fix = (
            "check LOGSTREAM_KAFKA_BOOTSTRAP_SERVERS"
            if settings.kafka_bootstrap_servers
            else "start it with `logstream kafka start` or point "
            "LOGSTREAM_KAFKA_HOST/LOGSTREAM_KAFKA_PORT at it"
        )
        raise ServiceError(f"Kafka is not reachable at {settings.kafka_bootstrap}; {fix}")
    return PreflightReport(java, jars, settings.kafka_bootstrap, reachable)


__all__ = ["LogstreamError", "PreflightReport", "preflight_due", "run_preflight"]
