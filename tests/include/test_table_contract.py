"""The analysts' contract: every table's columns, in order, with their Spark types and whether
they may be null. The lists below are written by hand from SPEC §4-§6 and §7.3; a change to a
table's schema must change this file too, on purpose.

Types are Spark's simple names; an array or map whose elements may not be null says so
(``array<string not null>``).
"""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from logstream import catalog
from logstream.storage.tables import table_schema

Columns = list[tuple[str, str, bool]]

# -- bronze and its side tables (SPEC §3, §4) -----------------------------------------------------
_KAFKA: Columns = [
    ("kafka_topic", "string", True),
    ("kafka_partition", "int", True),
    ("kafka_offset", "bigint", True),
    ("kafka_timestamp", "timestamp", True),
]
_INGESTION: Columns = [
    ("processing_time", "timestamp", True),
    ("lateness_ms", "bigint", True),
    ("event_date", "date", True),
    ("event_hour", "int", True),
]
EVENTS: Columns = [
    ("event_id", "string", False),
    ("event_time", "timestamp", True),
    ("level", "string", True),
    ("service", "string", True),
    ("message", "string", True),
    ("ip_address", "string", True),
    ("user_id", "string", True),
    ("request_id", "string", True),
    ("response_time", "double", True),
    ("status_code", "int", True),
    ("error_code", "string", True),
    ("http_method", "string", True),
    ("path", "string", True),
    ("protocol", "string", True),
    ("bytes_sent", "bigint", True),
    ("referrer", "string", True),
    ("user_agent", "string", True),
    ("vhost", "string", True),
    ("forwarded_for", "string", True),
    ("extra", "map<string,string>", True),
    ("source_format", "string", True),
    *_KAFKA,
    *_INGESTION,
]
USER_EVENTS: Columns = [
    ("event_id", "string", False),
    ("event_time", "timestamp", True),
    ("user_id", "string", True),
    ("action", "string", True),
    ("value", "double", True),
    ("session_id", "string", True),
    ("ip_address", "string", True),
    ("extra", "map<string,string>", True),
    *_KAFKA,
    *_INGESTION,
]
_LATE_FOR: Columns = [("late_for", "array<string>", True)]

FIXED_TABLES: dict[str, Columns] = {
    "events": EVENTS,
    "user_events": USER_EVENTS,
    "quarantine": [
        ("reason", "string", True),
        ("detail", "string", True),
        ("raw_value", "binary", True),
        ("raw_length", "int", True),
        *_KAFKA,
        ("processing_time", "timestamp", True),
        ("quarantine_date", "date", True),
    ],
    "late_events": [*EVENTS, *_LATE_FOR],
    "late_user_events": [*USER_EVENTS, *_LATE_FOR],
    # SPEC §4, §5.2
    "anomalies": [
        ("anomaly_id", "string", False),
        ("kind", "string", False),
        ("entity", "string", True),
        ("window_start", "timestamp", True),
        ("window_end", "timestamp", True),
        ("observed", "double", True),
        ("threshold", "double", True),
        ("baseline", "double", True),
        ("severity", "string", True),
        ("detail", "string", True),
        ("window_date", "date", True),
    ],
    # SPEC §7.3
    "latency_report": [
        ("report_hour", "timestamp", False),
        ("scope", "string", False),
        ("service", "string", False),
        ("stage", "string", False),
        ("unit", "string", False),
        ("count", "bigint", False),
        ("p50", "double", True),
        ("p95", "double", True),
        ("p99", "double", True),
        ("max", "double", True),
        ("avg", "double", True),
        ("alert_level", "string", True),
        ("report_date", "date", False),
    ],
    # SPEC §6
    "reconciliation_report": [
        ("family", "string", False),
        ("change", "string", False),
        ("window_start", "timestamp", True),
        ("window_end", "timestamp", True),
        ("entity", "string", True),
        ("count_column", "string", False),
        ("streamed_count", "bigint", True),
        ("reconciled_count", "bigint", True),
        ("changed_columns", "array<string>", True),
        ("report_date", "date", True),
    ],
}

# -- metric tables (SPEC §5): window, group key, metrics, then the window_date partition ---------
_WINDOW: Columns = [("window_start", "timestamp", True), ("window_end", "timestamp", True)]
_DATE: Columns = [("window_date", "date", True)]

METRIC_TABLES: dict[str, Columns] = {
    "response_time": [
        *_WINDOW,
        ("service", "string", True),
        ("request_count", "bigint", False),
        ("avg_response_time", "double", True),
        ("min_response_time", "double", True),
        ("max_response_time", "double", True),
        ("stddev_response_time", "double", True),
        ("p50_response_time", "double", True),
        ("p95_response_time", "double", True),
        ("p99_response_time", "double", True),
        *_DATE,
    ],
    "error_rate": [
        *_WINDOW,
        ("service", "string", True),
        ("total_requests", "bigint", False),
        ("error_count", "bigint", False),
        ("error_rate", "double", True),
        *_DATE,
    ],
    "ip_patterns": [
        *_WINDOW,
        ("ip_address", "string", True),
        ("request_count", "bigint", False),
        ("unique_users", "int", False),
        ("services_used", "array<string not null>", False),
        *_DATE,
    ],
    "sla": [
        *_WINDOW,
        ("service", "string", True),
        ("total_requests", "bigint", False),
        ("fast_requests", "bigint", False),
        ("successful_requests", "bigint", False),
        ("availability_pct", "double", True),
        ("performance_pct", "double", True),
        *_DATE,
    ],
    "user_activity": [
        *_WINDOW,
        ("user_id", "string", True),
        ("activity_count", "bigint", False),
        ("distinct_services", "int", False),
        ("avg_response_time", "double", True),
        *_DATE,
    ],
    "service_popularity": [
        *_WINDOW,
        ("service", "string", True),
        ("request_count", "bigint", False),
        ("unique_users", "int", False),
        *_DATE,
    ],
    "system_health": [
        *_WINDOW,
        ("total_requests", "bigint", False),
        ("active_services", "int", False),
        ("active_users", "int", False),
        ("avg_response_time", "double", True),
        ("error_count", "bigint", False),
        ("error_rate", "double", True),
        ("health_score", "int", False),
        *_DATE,
    ],
    "processing_latency": [
        *_WINDOW,
        ("service", "string", True),
        ("record_count", "bigint", False),
        ("avg_latency_ms", "double", True),
        ("max_latency_ms", "double", True),
        ("min_latency_ms", "double", True),
        ("alert_level", "string", False),
        *_DATE,
    ],
    # the inputs of the DDoS (§5.2.3) and high-activity (§5.2.5) rules
    "ip_requests": [
        *_WINDOW,
        ("ip_address", "string", True),
        ("request_count", "bigint", False),
        ("unique_users", "int", False),
        *_DATE,
    ],
    # SPEC §5.3
    "user_event_activity": [
        *_WINDOW,
        ("user_id", "string", True),
        ("total_events", "bigint", False),
        ("unique_actions", "int", False),
        ("total_value", "double", True),
        ("actions", "array<string>", False),
        *_DATE,
    ],
    "action_metrics": [
        *_WINDOW,
        ("action", "string", True),
        ("action_count", "bigint", False),
        ("unique_users", "int", False),
        ("avg_value", "double", True),
        ("max_value", "double", True),
        ("min_value", "double", True),
        *_DATE,
    ],
    "user_event_counts": [
        *_WINDOW,
        ("user_id", "string", True),
        ("event_count", "bigint", False),
        *_DATE,
    ],
}

CONTRACT: dict[str, Columns] = {
    **FIXED_TABLES,
    **METRIC_TABLES,
    **{f"reconciled/{name}": columns for name, columns in METRIC_TABLES.items()},
}


def _type_name(data_type: T.DataType) -> str:
    if isinstance(data_type, T.ArrayType):
        element = _type_name(data_type.elementType)
        return f"array<{element}>" if data_type.containsNull else f"array<{element} not null>"
    if isinstance(data_type, T.MapType):
        pair = f"{_type_name(data_type.keyType)},{_type_name(data_type.valueType)}"
        return f"map<{pair}>" if data_type.valueContainsNull else f"map<{pair} not null>"
    return data_type.simpleString()


def _columns(schema: T.StructType) -> Columns:
    return [(field.name, _type_name(field.dataType), field.nullable) for field in schema.fields]


@pytest.mark.parametrize("name", list(CONTRACT))
def test_the_table_has_the_contracted_columns(spark, name):
    assert _columns(table_schema(spark, name)) == CONTRACT[name]


def test_the_contract_lists_every_metric_family():
    assert list(METRIC_TABLES) == [family.name for family in catalog.FAMILIES]


def test_a_table_outside_the_contract_has_no_schema(spark):
    for name in ("metrics", "reconciled/events", "reconciled/anomalies"):
        with pytest.raises(KeyError):
            table_schema(spark, name)
