"""The ingestion pipelines: one per input topic, with its parse and the tables it lands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from logstream import schemas
from logstream.config import Settings
from logstream.transforms import parsing


@dataclass(frozen=True)
class Pipeline:
    """One input topic and the tables it lands."""

    name: str  # "logs" | "user_events"
    topic: str
    parse: Callable[[DataFrame], DataFrame]
    events_table: str
    events_schema: T.StructType
    late_table: str
    source: str  # Family.source served by events_table


def pipelines(settings: Settings) -> dict[str, Pipeline]:
    options = parsing.ParseOptions.from_settings(settings)
    return {
        "logs": Pipeline(
            "logs",
            settings.logs_topic,
            parsing.parse_log_records(options),
            "events",
            schemas.EVENTS,
            "late_events",
            "events",
        ),
        "user_events": Pipeline(
            "user_events",
            settings.user_events_topic,
            parsing.parse_user_events(options),
            "user_events",
            schemas.USER_EVENTS,
            "late_user_events",
            "user_events",
        ),
    }
