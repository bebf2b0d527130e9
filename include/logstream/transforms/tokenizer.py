"""The Java half of parsing (``jvm/logstream-spark``) as Spark sees it: the functions' names and
classes, the structs they return, and how a call is made.

``LogTokens`` and ``UserEventTokens`` do the text-level work once per record (decode, envelope,
format choice, JSON paths, access-log patterns); :mod:`logstream.transforms.parsing` types and
validates what they return.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

#: logstream's Java functions (``jvm/logstream-spark``), registered per session on first use.
LOG_TOKENS_FUNCTION = "logstream_log_tokens"
USER_EVENT_TOKENS_FUNCTION = "logstream_user_event_tokens"
_JAVA_CLASSES = {
    LOG_TOKENS_FUNCTION: "dev.logstream.spark.LogTokens",
    USER_EVENT_TOKENS_FUNCTION: "dev.logstream.spark.UserEventTokens",
}
_TEXT_FIELDS = [
    "level", "service", "message", "ip_address", "user_id", "request_id", "error_code",
    "http_method", "path", "protocol", "referrer", "user_agent", "vhost", "forwarded_for",
]  # fmt: skip
_EXTRA = T.StructField("extra", T.MapType(T.StringType(), T.StringType()))
#: What ``logstream_log_tokens(value, key, topic, kafka_timestamp_micros, spec)`` returns, in its
#: order (LogTokens.java).
LOG_TOKENS = T.StructType(
    [
        *[T.StructField(name, T.BooleanType()) for name in ("is_json", "is_access", "blank")],
        T.StructField("problem", T.StringType()),
        T.StructField("problem_detail", T.StringType()),
        *[T.StructField(name, T.StringType()) for name in _TEXT_FIELDS],
        _EXTRA,
        *[
            T.StructField(name, T.StringType())
            for name in (
                "source_format",
                "timestamp_text",
                "time_layout",
                "status_text",
                "response_time_text",
                "bytes_text",
            )
        ],
        T.StructField("epoch_micros", T.LongType()),
    ]
)
#: What ``logstream_user_event_tokens(value, max_record_bytes)`` returns (UserEventTokens.java).
USER_EVENT_TOKENS = T.StructType(
    [
        *[T.StructField(name, T.BooleanType()) for name in ("looks_json", "is_json", "blank")],
        *[
            T.StructField(name, T.StringType())
            for name in ("user_id", "action", "session_id", "ip_address")
        ],
        _EXTRA,
        T.StructField("timestamp_text", T.StringType()),
        T.StructField("value_text", T.StringType()),
        T.StructField("epoch_micros", T.LongType()),
    ]
)
_TOKEN_TYPES = {LOG_TOKENS_FUNCTION: LOG_TOKENS, USER_EVENT_TOKENS_FUNCTION: USER_EVENT_TOKENS}


def call(
    records: DataFrame, function: str, inputs: list[Column], options: list[str | int | bytes]
) -> Column:
    """A call of one of the Java tokenizers (registered in the frame's session if need be), the
    options as literal arguments. The call sits behind an optimizer barrier so that filters on
    the parsed frame do not copy it."""
    records.sparkSession.udf.registerJavaFunction(
        function, _JAVA_CLASSES[function], _TOKEN_TYPES[function]
    )
    literals = [
        F.lit(bytearray(option)) if isinstance(option, bytes) else F.lit(option)
        for option in options
    ]
    return optimizer_barrier(F.call_function(function, *inputs, *literals))


def optimizer_barrier(column: Column) -> Column:
    """``column`` unchanged, but computed in a projection Spark will not push filters through.

    Spark's optimizer pushes a filter on our output (``valid_events``, a metric's ``where``) down
    through every projection, substituting each column by the expression that computes it. Here
    that would inline the JSON parse and the regex dozens of times into the filter (measured: a
    100x slowdown). Filters are never pushed through a non-deterministic projection, so the
    verdict is made to depend, trivially, on ``spark_partition_id()`` (cheap, never negative).
    """
    return F.when(F.spark_partition_id() >= 0, column)
