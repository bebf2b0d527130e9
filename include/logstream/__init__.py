"""logstream: real-time log analytics on Kafka, Spark Structured Streaming and Airflow 3."""

from __future__ import annotations

__version__ = "0.1.0"
