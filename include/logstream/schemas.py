"""Table and record schemas: the contract between the stream, the batch replay and the tests.

Every streaming source gets an explicit schema; every sink table has one here. Column order in
these constants is the column order on disk.
"""

from __future__ import annotations

from pyspark.sql import types as T

# -- Kafka source -----------------------------------------------------------------------------
#: What Spark's Kafka source yields (the subset we use), also used for offline `logstream parse`.
KAFKA_RECORD = T.StructType(
    [
        T.StructField("key", T.BinaryType()),
        T.StructField("value", T.BinaryType()),
        T.StructField("topic", T.StringType()),
        T.StructField("partition", T.IntegerType()),
        T.StructField("offset", T.LongType()),
        T.StructField("timestamp", T.TimestampType()),
    ]
)

_KAFKA_COORDINATES = [
    T.StructField("kafka_topic", T.StringType()),
    T.StructField("kafka_partition", T.IntegerType()),
    T.StructField("kafka_offset", T.LongType()),
    T.StructField("kafka_timestamp", T.TimestampType()),
]

# -- parsed log record (output of logstream.transforms.parsing.parse_log_records) -------------
#: Event fields of a log record, in bronze order. All nullable except where parsing guarantees.
LOG_EVENT_FIELDS = [
    T.StructField("event_id", T.StringType(), False),  # "<topic>:<partition>:<offset>"
    T.StructField("event_time", T.TimestampType()),
    T.StructField("level", T.StringType()),
    T.StructField("service", T.StringType()),
    T.StructField("message", T.StringType()),
    T.StructField("ip_address", T.StringType()),
    T.StructField("user_id", T.StringType()),
    T.StructField("request_id", T.StringType()),
    T.StructField("response_time", T.DoubleType()),  # seconds
    T.StructField("status_code", T.IntegerType()),
    T.StructField("error_code", T.StringType()),
    T.StructField("http_method", T.StringType()),
    T.StructField("path", T.StringType()),
    T.StructField("protocol", T.StringType()),
    T.StructField("bytes_sent", T.LongType()),
    T.StructField("referrer", T.StringType()),
    T.StructField("user_agent", T.StringType()),
    T.StructField("vhost", T.StringType()),  # the virtual host served ($host, %v)
    T.StructField("forwarded_for", T.StringType()),  # the X-Forwarded-For list, whole
    # fields no column takes (JSON keys, access-log variables) and envelope metadata (envelope.*)
    T.StructField("extra", T.MapType(T.StringType(), T.StringType())),
    T.StructField("source_format", T.StringType()),  # the format that read it (logstream.formats)
]

#: Quarantine fields produced by parsing for a rejected record (null for valid records).
REJECTION_FIELDS = [
    T.StructField("reason", T.StringType()),
    T.StructField("detail", T.StringType()),
    T.StructField("raw_value", T.BinaryType()),  # the payload, truncated to raw_bytes_kept
    T.StructField("raw_length", T.IntegerType()),  # the payload's full length in bytes
]

#: Columns the ingestion job adds when it lands events.
_INGESTION_FIELDS = [
    T.StructField("processing_time", T.TimestampType()),
    # max event time seen before this micro-batch minus this event's time, in ms (null at start)
    T.StructField("lateness_ms", T.LongType()),
    T.StructField("event_date", T.DateType()),  # partition column
    T.StructField("event_hour", T.IntegerType()),  # partition column
]

# -- tables -------------------------------------------------------------------------------------
EVENTS = T.StructType(LOG_EVENT_FIELDS + _KAFKA_COORDINATES + _INGESTION_FIELDS)

#: Columns that hold a different value in (nearly) every row. Parquet's dictionary encoding only
#: costs time on them (it fills a dictionary page, then falls back to plain encoding), so the
#: table writers turn it off for these columns.
DISTINCT_PER_ROW = ("event_id", "request_id", "event_time", "kafka_offset", "kafka_timestamp")

QUARANTINE = T.StructType(
    [
        *REJECTION_FIELDS,
        *_KAFKA_COORDINATES,
        T.StructField("processing_time", T.TimestampType()),
        T.StructField("quarantine_date", T.DateType()),  # partition column (Kafka timestamp)
    ]
)

#: Reason codes in `quarantine.reason`.
REASONS = {
    "empty": "the payload is empty or only whitespace",
    "oversized": "the payload is larger than max_record_bytes",
    "invalid_json": "the payload starts like JSON but is not exactly one JSON object",
    "unrecognized_format": "neither a JSON object nor a line in any access-log format tried",
    "partial_line": "a CRI partial line (tag P): a container runtime split a long line",
    "missing_timestamp": "no timestamp field",
    "invalid_timestamp": "the timestamp is neither ISO-8601 nor an epoch in s/ms/us/ns",
    "timestamp_out_of_range": "the timestamp is too far before or after the Kafka timestamp",
    "missing_field": "a required field (action or user_id of a user event) is missing",
    "invalid_field": "a field has the wrong type or an impossible value",
}

# -- user-events (SPEC §5.3) ---------------------------------------------------------------------
USER_EVENT_FIELDS = [
    T.StructField("event_id", T.StringType(), False),
    T.StructField("event_time", T.TimestampType()),
    T.StructField("user_id", T.StringType()),
    T.StructField("action", T.StringType()),
    T.StructField("value", T.DoubleType()),
    T.StructField("session_id", T.StringType()),
    T.StructField("ip_address", T.StringType()),
    T.StructField("extra", T.MapType(T.StringType(), T.StringType())),
]

USER_EVENTS = T.StructType(USER_EVENT_FIELDS + _KAFKA_COORDINATES + _INGESTION_FIELDS)

# -- latency_report (SPEC §7.3) ------------------------------------------------------------------
#: One row per (hour, scope, service, stage); ``report_date`` is the partition column.
LATENCY_REPORT = T.StructType(
    [
        T.StructField("report_hour", T.TimestampType(), False),  # start of the UTC hour
        T.StructField("scope", T.StringType(), False),  # all | service | query
        T.StructField("service", T.StringType(), False),  # service, "*" or query name
        T.StructField("stage", T.StringType(), False),
        T.StructField("unit", T.StringType(), False),  # ms | records
        T.StructField("count", T.LongType(), False),
        T.StructField("p50", T.DoubleType()),
        T.StructField("p95", T.DoubleType()),
        T.StructField("p99", T.DoubleType()),
        T.StructField("max", T.DoubleType()),
        T.StructField("avg", T.DoubleType()),
        T.StructField("alert_level", T.StringType()),  # OK | INFO | WARNING | CRITICAL | null
        T.StructField("report_date", T.DateType(), False),
    ]
)

# -- reconciliation_report (SPEC §6): one row per window the nightly replay changed -----------
RECONCILIATION_REPORT = T.StructType(
    [
        T.StructField("family", T.StringType(), False),
        # missing_in_stream | different | only_in_stream
        T.StructField("change", T.StringType(), False),
        T.StructField("window_start", T.TimestampType()),
        T.StructField("window_end", T.TimestampType()),
        T.StructField("entity", T.StringType()),  # the group key values joined with "|"
        T.StructField("count_column", T.StringType(), False),
        T.StructField("streamed_count", T.LongType()),
        T.StructField("reconciled_count", T.LongType()),
        T.StructField("changed_columns", T.ArrayType(T.StringType())),
        T.StructField("report_date", T.DateType()),  # partition column
    ]
)
