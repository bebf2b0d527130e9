"""Typed errors that operators can meet. Every message says what happened and what to do."""

from __future__ import annotations


class LogstreamError(Exception):
    """Base class: an error with an operator-facing message (printed without a traceback)."""


class ConfigError(LogstreamError):
    """A setting is missing, malformed or out of range."""


class MissingDependencyError(LogstreamError):
    """Java, the JVM jars or another prerequisite is not installed."""


class ServiceError(LogstreamError):
    """A local service (Kafka broker, Airflow) failed to start, stop or answer."""
