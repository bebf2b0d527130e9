"""Preflight checks an operator (or the supervisor DAG) runs before starting the stream."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from logstream.config import Settings
from logstream.errors import LogstreamError, ServiceError
from logstream.jars import BUNDLES, bundle_jars, udf_jar
from logstream.kafka.broker import find_java, port_open


@dataclass(frozen=True)
class PreflightReport:
    java: str
    jars: dict[str, int]
    kafka_bootstrap: str
    kafka_reachable: bool

    def as_dict(self) -> dict:
        return asdict(self)


def run_preflight(settings: Settings, require_kafka: bool = True) -> PreflightReport:
    """Check Java, the cached jars and (optionally) the Kafka broker; raise a clear error."""
    java = find_java()
    jars = {bundle: len(bundle_jars(settings, bundle)) for bundle in BUNDLES}
    udf_jar(settings)  # raises, naming the fix, when logstream's own jar was never built
    jars["logstream-spark"] = 1
    reachable = port_open(settings.kafka_host, settings.kafka_port)
    if require_kafka and not reachable:
        raise ServiceError(
            f"Kafka is not reachable at {settings.kafka_bootstrap}; start it with "
            "`logstream kafka start` or point LOGSTREAM_KAFKA_HOST/LOGSTREAM_KAFKA_PORT at it"
        )
    return PreflightReport(java, jars, settings.kafka_bootstrap, reachable)


__all__ = ["LogstreamError", "PreflightReport", "run_preflight"]
