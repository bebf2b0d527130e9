"""Parse and validate raw Kafka records into typed events or quarantine rows (SPEC §3).

This is the stream's hot path, so every record is parsed exactly once and everything stays in the
JVM: no Python UDFs, no actions, no I/O. It comes in two halves. The text-level half (decode and
trim the payload, detect the format, read the JSON object or match the access-log line, split out
the fields as text) is Java, ``jvm/logstream-spark`` (``LogTokens``, ``UserEventTokens``): one pass
per record where Spark SQL needed a JSON map, a lookup per field and a dozen copies of each text,
measured 2.8x faster (docs/BENCHMARKS.md, session 12). Typing and validation (timestamps,
numbers, the checks and their messages) are the Spark SQL below, so they keep Spark's own
semantics. The same transforms serve the
streaming job, the batch replay, ``logstream parse`` and the tests::

    parsed = kafka_records.transform(parse_log_records(ParseOptions.from_settings(settings)))
    events = parsed.transform(valid_events)
    quarantine = parsed.transform(rejected_records)

How a record is read:

* The payload is decoded as UTF-8 with invalid byte sequences replaced by U+FFFD; such records are
  kept (the replacement is visible in the text fields), not rejected. Payloads larger than
  ``max_record_bytes`` are rejected as ``oversized`` before they are decoded or parsed.
* Auto-detection, per record, on the payload trimmed of ASCII whitespace: starting with ``{`` it
  is JSON (``[`` too, which can then only be ``invalid_json``); otherwise it must match the
  access-log pattern; otherwise it is ``unrecognized_format``. A forced ``json`` format rejects
  everything else as ``invalid_json``; forced ``apache`` (Common or Combined, nothing appended)
  and ``nginx`` (combined, optionally with ``$request_time``) reject the rest as
  ``unrecognized_format``.
* JSON is read once, as Spark's ``from_json`` would read it into a ``map<string,string>`` (same
  Jackson settings, same rendering of non-string values): known keys become typed columns, unknown
  keys stay in ``extra`` (nested objects and arrays as their JSON text; null when there are none).
  A JSON ``null`` counts as a missing field. Because every value is read as text, ``"200"`` and
  ``200`` are the same ``status_code``. Keys are case-sensitive; string values are kept verbatim.
  A key given twice counts once: its first value for a known key, its last for ``extra`` (the
  SQL parser before session 12 kept both entries in the map; readers saw the last one).
* ``timestamp``: ISO-8601 text (without an offset it is read in the session time zone, UTC in
  logstream sessions), or epoch seconds or milliseconds as a number or numeric text; values above
  1e11 are milliseconds. Epoch microseconds are not recognised (``invalid_timestamp``).
* Access logs are matched by one regular expression (Common, Combined, and Combined followed by
  nginx's ``$request_time``, ``_ACCESS_LOG`` below, handed to the Java half); a line containing
  U+0001 is never one (real access logs escape control characters). ``-`` for bytes, user,
  referrer or user agent becomes null, as does an empty referrer or user agent; ``\\"`` and
  ``\\\\`` inside quoted fields are unescaped (nginx's ``\\xXX`` escapes are kept as written).
  A request line that is not ``METHOD PATH [PROTOCOL]`` (``-``, TLS garbage, a path with spaces)
  keeps method, path and protocol null; ``message`` is always the request line. ``service`` is the
  Kafka key when it is not blank, else ``default_service``; ``level`` follows the status.

Every input row yields exactly one output row. ``reason`` is null for a valid event and otherwise
the first failed check of: empty, oversized, invalid_json / unrecognized_format,
missing_timestamp, invalid_timestamp, timestamp_out_of_range (skipped when the Kafka timestamp is
null), missing_field, invalid_field; ``detail`` says which field and value. For rejected rows the
event columns are best-effort leftovers of parsing: use :func:`valid_events` and
:func:`rejected_records` rather than reading them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream import schemas
from logstream.config import Settings
from logstream.errors import ConfigError

FORMATS = ("auto", "json", "apache", "nginx")

#: Kafka source columns renamed on the way out (SPEC §3: every record keeps its coordinates).
KAFKA_COLUMNS = {
    "topic": "kafka_topic",
    "partition": "kafka_partition",
    "offset": "kafka_offset",
    "timestamp": "kafka_timestamp",
}

_WHITESPACE = " \t\n\r\f\u000b"
_ACCESS_TIME_FORMAT = "dd/MMM/yyyy:HH:mm:ss Z"
_DETAIL_TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"
#: Epoch values above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_EPOCH_MILLIS_ABOVE = 100_000_000_000
#: Epoch seconds at or beyond this magnitude are not timestamps (they would overflow Spark's).
_EPOCH_SECONDS_LIMIT = 100_000_000_000
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DETAIL_VALUE_CHARS = 80
_MAX_INT = 2**31 - 1

# -- the access-log pattern --------------------------------------------------------------------
# A double-quoted field's body: any characters but `"` and `\`, or a backslash escape. Written as
# an "unrolled loop" with possessive quantifiers so that Java's regex engine neither backtracks
# nor recurses per character (an 8 KB URL would otherwise overflow its stack).
_QUOTED_BODY = r'[^"\\]*+(?:\\.[^"\\]*+)*+'
_PATH_BODY = r'[^"\\ ]*+(?:\\.[^"\\ ]*+)*+'
# The request line, split into method, path and protocol when it has that shape; anything else
# (`-`, binary garbage, a path with spaces) falls back to the plain quoted body.
_REQUEST = rf"((?:([A-Z]+) ({_PATH_BODY})(?: (HTTP/[0-9.]+))?|{_QUOTED_BODY}))"
_ACCESS_LOG = (
    r"^(\S+) \S+ (\S+) \[([^\]]*)\] "  # 1 client, (identd), 2 user, 3 time
    rf'"{_REQUEST}" '  # 4 request line, 5 method, 6 path, 7 protocol
    r"([0-9]{3}) ([0-9]+|-)"  # 8 status, 9 bytes
    rf'(?: ("{_QUOTED_BODY}") "({_QUOTED_BODY})"'  # 10 "referrer" (quotes kept), 11 user agent
    r"(?: ([0-9]+(?:\.[0-9]+)?|-))?)?$"  # 12 nginx $request_time
)


@dataclass(frozen=True)
class ParseOptions:
    """How records are parsed and what counts as valid (the parsing part of Settings)."""

    format: str = "auto"  # auto | json | apache | nginx
    max_record_bytes: int = 65_536
    raw_bytes_kept: int = 4_096
    timestamp_max_past_s: int = 7 * 86_400
    timestamp_max_future_s: int = 3_600
    default_service: str = "web"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(
                f"parse format {self.format!r} must be one of {', '.join(FORMATS)}; "
                "set LOGSTREAM_PARSE_FORMAT"
            )
        minimums = {
            "max_record_bytes": 1,
            "raw_bytes_kept": 1,
            "timestamp_max_past_s": 0,
            "timestamp_max_future_s": 0,
        }
        for name, minimum in minimums.items():
            if getattr(self, name) < minimum:
                raise ConfigError(
                    f"{name}={getattr(self, name)} must be >= {minimum}; "
                    f"set LOGSTREAM_{name.upper()}"
                )
        if self.max_record_bytes > _MAX_INT:  # a Kafka record never is; the tokenizers take an int
            raise ConfigError(
                f"max_record_bytes={self.max_record_bytes} must be <= {_MAX_INT}; "
                "set LOGSTREAM_MAX_RECORD_BYTES"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseOptions:
        """Take the parsing settings (``parse_format`` becomes ``format``)."""
        return cls(
            format=settings.parse_format,
            max_record_bytes=settings.max_record_bytes,
            raw_bytes_kept=settings.raw_bytes_kept,
            timestamp_max_past_s=settings.timestamp_max_past_s,
            timestamp_max_future_s=settings.timestamp_max_future_s,
            default_service=settings.default_service,
        )


# -- public transforms -------------------------------------------------------------------------


def parse_log_records(options: ParseOptions) -> Callable[[DataFrame], DataFrame]:
    """Kafka records (``schemas.KAFKA_RECORD``) -> one row each: event, rejection, coordinates.

    Output columns: ``schemas.LOG_EVENT_FIELDS``, ``schemas.REJECTION_FIELDS``, then
    kafka_topic, kafka_partition, kafka_offset, kafka_timestamp.
    """

    def transform(records: DataFrame) -> DataFrame:
        arguments = [options.format, options.max_record_bytes, options.default_service, _ACCESS_LOG]
        tokens = _tokens(records, LOG_TOKENS_FUNCTION, [F.col("value"), F.col("key")], arguments)
        is_json, is_access = F.col("is_json"), F.col("is_access")
        events = (
            records.select(*_record_columns(), tokens.alias("tokens"))
            .select("*", "tokens.*")
            # typed fields
            .select(
                "*",
                F.when(is_access, F.try_to_timestamp("timestamp_text", F.lit(_ACCESS_TIME_FORMAT)))
                .otherwise(_json_event_time(F.col("timestamp_text")))
                .alias("event_time"),
                _integer(F.col("status_text"), 3).cast("int").alias("status_code"),
                _finite_double(F.col("response_time_text")).alias("response_time"),
                _integer(F.col("bytes_text"), 18).alias("bytes_sent"),
            )
            .withColumn(
                "level",
                F.when(is_access, _level_from_status(F.col("status_code"))).otherwise(
                    F.col("level")
                ),
            )
        )
        problems = [
            *_format_problems(options),
            *_timestamp_problems(options),
            (
                is_json & _blank(F.col("service")),
                "missing_field",
                F.lit("required field 'service' is missing, null or blank"),
            ),
            (
                F.col("status_text").isNotNull()
                & ~F.coalesce(F.col("status_code").between(100, 599), F.lit(False)),
                "invalid_field",
                _detail("status_code ", F.col("status_text"), " is not an integer in 100..599"),
            ),
            (
                F.col("response_time_text").isNotNull()
                & ~F.coalesce(F.col("response_time") >= 0, F.lit(False)),
                "invalid_field",
                _detail(
                    "response_time ",
                    F.col("response_time_text"),
                    " is not a non-negative number of seconds",
                ),
            ),
            (
                F.col("bytes_text").isNotNull() & F.col("bytes_sent").isNull(),
                "invalid_field",
                _detail("bytes_sent ", F.col("bytes_text"), " is not a non-negative integer"),
            ),
        ]
        return _with_verdict(events, schemas.LOG_EVENT_FIELDS, problems, options)

    return transform


def parse_user_events(options: ParseOptions) -> Callable[[DataFrame], DataFrame]:
    """Kafka records of the user-events topic -> ``schemas.USER_EVENT_FIELDS`` + rejection + coords.

    User events are always JSON (``options.format`` does not apply). ``timestamp`` follows the same
    rules as for logs; ``user_id`` and ``action`` are required; ``value`` must be a finite number
    when present.
    """

    def transform(records: DataFrame) -> DataFrame:
        arguments = [options.max_record_bytes]
        tokens = _tokens(records, USER_EVENT_TOKENS_FUNCTION, [F.col("value")], arguments)
        events = (
            records.select(*_record_columns(), tokens.alias("tokens"))
            .select("*", "tokens.*", F.lit(False).alias("is_access"))
            .select(
                "*",
                _json_event_time(F.col("timestamp_text")).alias("event_time"),
                _finite_double(F.col("value_text")).alias("value"),
            )
        )
        problems = [
            *_format_problems(replace(options, format="json")),
            *_timestamp_problems(options),
            *[
                (
                    _blank(F.col(name)),
                    "missing_field",
                    F.lit(f"required field '{name}' is missing, null or blank"),
                )
                for name in ("user_id", "action")
            ],
            (
                F.col("value_text").isNotNull() & F.col("value").isNull(),
                "invalid_field",
                _detail("value ", F.col("value_text"), " is not a finite number"),
            ),
        ]
        return _with_verdict(events, schemas.USER_EVENT_FIELDS, problems, options)

    return transform


def valid_events(parsed: DataFrame) -> DataFrame:
    """The valid rows of a parsed frame: its event columns, then the Kafka coordinates."""
    event_columns = [
        name
        for name in parsed.columns
        if name not in _REJECTION_COLUMNS and name not in _KAFKA_OUTPUT
    ]
    return parsed.where(F.col("reason").isNull()).select(*event_columns, *_KAFKA_OUTPUT)


def valid_user_events(parsed: DataFrame) -> DataFrame:
    """The valid rows of a parsed user-events frame (the same rule as :func:`valid_events`)."""
    return valid_events(parsed)


def rejected_records(parsed: DataFrame) -> DataFrame:
    """The rejected rows of a parsed frame: reason, detail, raw bytes, then Kafka coordinates."""
    return parsed.where(F.col("reason").isNotNull()).select(*_REJECTION_COLUMNS, *_KAFKA_OUTPUT)


# -- building blocks ---------------------------------------------------------------------------

_REJECTION_COLUMNS = [field.name for field in schemas.REJECTION_FIELDS]
_KAFKA_OUTPUT = list(KAFKA_COLUMNS.values())
_EPOCH_TYPE = "decimal(38,6)"  # exact to the microsecond; anything non-numeric casts to null

#: (condition, reason code, detail); checked in order, the first true condition wins.
Problem = tuple[Column, str, Column]


#: logstream's Java functions (``jvm/logstream-spark``), registered per session on first use.
LOG_TOKENS_FUNCTION = "logstream_log_tokens"
USER_EVENT_TOKENS_FUNCTION = "logstream_user_event_tokens"
_JAVA_CLASSES = {
    LOG_TOKENS_FUNCTION: "dev.logstream.spark.LogTokens",
    USER_EVENT_TOKENS_FUNCTION: "dev.logstream.spark.UserEventTokens",
}
_TEXT_FIELDS = [
    "level", "service", "message", "ip_address", "user_id", "request_id", "error_code",
    "http_method", "path", "protocol", "referrer", "user_agent",
]  # fmt: skip
_EXTRA = T.StructField("extra", T.MapType(T.StringType(), T.StringType()))
#: What ``logstream_log_tokens(value, key, format, max_record_bytes, default_service, pattern)``
#: returns, in its order (LogTokens.java).
LOG_TOKENS = T.StructType(
    [
        *[T.StructField(name, T.BooleanType()) for name in ("looks_json", "is_json", "is_access")],
        T.StructField("blank", T.BooleanType()),
        *[T.StructField(name, T.StringType()) for name in _TEXT_FIELDS],
        _EXTRA,
        *[
            T.StructField(name, T.StringType())
            for name in (
                "source_format",
                "timestamp_text",
                "status_text",
                "response_time_text",
                "bytes_text",
            )
        ],
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
    ]
)
_TOKEN_TYPES = {LOG_TOKENS_FUNCTION: LOG_TOKENS, USER_EVENT_TOKENS_FUNCTION: USER_EVENT_TOKENS}


def _tokens(
    records: DataFrame, function: str, inputs: list[Column], options: list[str | int]
) -> Column:
    """A call of one of the Java tokenizers (registered in the frame's session if need be), the
    options as literal arguments. The call sits behind an optimizer barrier so that filters on
    the parsed frame do not copy it."""
    records.sparkSession.udf.registerJavaFunction(
        function, _JAVA_CLASSES[function], _TOKEN_TYPES[function]
    )
    literals = [F.lit(option) for option in options]
    return _optimizer_barrier(F.call_function(function, *inputs, *literals))


def _record_columns() -> list[Column]:
    """Event id, the raw payload and its size, and the Kafka coordinates."""
    return [
        F.concat_ws(
            ":", F.col("topic"), F.col("partition").cast("string"), F.col("offset").cast("string")
        ).alias("event_id"),
        F.col("value").alias("payload_bytes"),
        F.coalesce(F.octet_length("value"), F.lit(0)).alias("raw_length"),
        *[F.col(source).alias(target) for source, target in KAFKA_COLUMNS.items()],
    ]


def _trimmed(text: Column) -> Column:
    """``text`` without leading and trailing ASCII whitespace (the blank checks of required
    fields; the tokenizers trim the payload and the typed fields' texts themselves)."""
    return F.trim(text, F.lit(_WHITESPACE))


def _blank(text: Column) -> Column:
    return text.isNull() | (_trimmed(text) == "")


def _integer(text: Column, max_digits: int) -> Column:
    """``text`` as a long when it is 1..max_digits decimal digits, else null."""
    return F.when(text.rlike(f"^[0-9]{{1,{max_digits}}}$"), text.try_cast("long"))


def _finite_double(text: Column) -> Column:
    """``text`` as a double when it is a finite number (as JSON writes one), else null."""
    number = F.when(text.rlike(_NUMBER), text.try_cast("double"))
    return F.when(F.abs(number) < float("inf"), number)


def _epoch(text: Column) -> Column:
    """``text`` as an exact epoch number, null when it is not a number. The pattern check comes
    first because a failed decimal cast is slow (it throws inside the JVM)."""
    return F.when(text.rlike(_NUMBER), text.try_cast(_EPOCH_TYPE))


def _json_event_time(text: Column) -> Column:
    """ISO-8601 text, or epoch seconds or millis (values above 1e11 are millis).

    ISO-8601 text without an offset is read in the session time zone (UTC in logstream sessions).
    Epochs are exact decimals, so fractional seconds and millis do not pick up float error.
    """
    epoch = _epoch(text)
    seconds = F.when(epoch > _EPOCH_MILLIS_ABOVE, epoch / 1000).otherwise(epoch)
    return F.when(
        epoch.isNotNull(),
        F.when(F.abs(seconds) < _EPOCH_SECONDS_LIMIT, F.timestamp_seconds(seconds)),
    ).otherwise(text.try_cast("timestamp"))


def _level_from_status(status: Column) -> Column:
    return F.when(status >= 500, "ERROR").when(status >= 400, "WARN").otherwise("INFO")


def _detail(prefix: str, value: Column, suffix: str) -> Column:
    """``prefix'value'suffix`` with the value cut to a readable length."""
    shown = F.when(
        F.length(value) > _DETAIL_VALUE_CHARS,
        F.concat(F.substring(value, 1, _DETAIL_VALUE_CHARS), F.lit("...")),
    ).otherwise(value)
    return F.concat(F.lit(f"{prefix}'"), shown, F.lit(f"'{suffix}"))


def _format_problems(options: ParseOptions) -> list[Problem]:
    """Null, empty and oversized payloads, and payloads not in an accepted format."""
    looks_json, is_json, is_access = F.col("looks_json"), F.col("is_json"), F.col("is_access")
    not_json_object = F.lit("the payload starts like JSON but is not a valid JSON object")
    if options.format == "json":
        unparsed: list[Problem] = [
            (looks_json & ~is_json, "invalid_json", not_json_object),
            (
                ~is_json,
                "invalid_json",
                F.lit("the payload is expected to be JSON but does not start with '{'"),
            ),
        ]
    elif options.format in ("apache", "nginx"):
        expected = {
            "apache": "an Apache Common or Combined Log Format line",
            "nginx": "an nginx combined log line (optionally with $request_time)",
        }[options.format]
        unparsed = [
            (
                ~is_access,
                "unrecognized_format",
                F.lit(f"parse format is {options.format} but the payload is not {expected}"),
            )
        ]
    else:
        unparsed = [
            (looks_json & ~is_json, "invalid_json", not_json_object),
            (
                ~is_json & ~is_access,
                "unrecognized_format",
                F.lit("the payload is neither a JSON object nor an Apache/nginx access log line"),
            ),
        ]
    return [
        (
            F.col("payload_bytes").isNull(),
            "empty",
            F.lit("the payload is null (a Kafka tombstone)"),
        ),
        (F.col("raw_length") == 0, "empty", F.lit("the payload is empty")),
        (
            F.col("raw_length") > options.max_record_bytes,
            "oversized",
            F.concat(
                F.lit("the payload is "),
                F.col("raw_length").cast("string"),
                F.lit(f" bytes, more than max_record_bytes={options.max_record_bytes}"),
            ),
        ),
        (F.col("blank"), "empty", F.lit("the payload is only whitespace")),
        *unparsed,
    ]


def _timestamp_problems(options: ParseOptions) -> list[Problem]:
    """Missing, unparseable, or too far from the Kafka timestamp (not checked if that is null)."""
    event_time, kafka_time = F.col("event_time"), F.col("kafka_timestamp")
    earliest = kafka_time - F.expr(f"INTERVAL '{options.timestamp_max_past_s}' SECOND")
    latest = kafka_time + F.expr(f"INTERVAL '{options.timestamp_max_future_s}' SECOND")

    def out_of_range(bound_s: int, side: str) -> Column:
        return F.concat(
            F.lit("event_time "),
            F.date_format(event_time, _DETAIL_TIME_FORMAT),
            F.lit(f" is more than {bound_s} s {side} the Kafka timestamp "),
            F.date_format(kafka_time, _DETAIL_TIME_FORMAT),
        )

    return [
        (
            F.col("timestamp_text").isNull(),
            "missing_timestamp",
            F.lit("field 'timestamp' is missing or null"),
        ),
        (
            event_time.isNull(),
            "invalid_timestamp",
            F.when(
                F.col("is_access"),
                _detail("time ", F.col("timestamp_text"), " is not dd/MMM/yyyy:HH:mm:ss Z"),
            ).otherwise(
                _detail(
                    "timestamp ",
                    F.col("timestamp_text"),
                    " is neither ISO-8601 nor epoch seconds/millis",
                )
            ),
        ),
        (
            event_time < earliest,
            "timestamp_out_of_range",
            out_of_range(options.timestamp_max_past_s, "before"),
        ),
        (
            event_time > latest,
            "timestamp_out_of_range",
            out_of_range(options.timestamp_max_future_s, "after"),
        ),
    ]


def _with_verdict(
    events: DataFrame,
    event_fields: list[T.StructField],
    problems: list[Problem],
    options: ParseOptions,
) -> DataFrame:
    """Event columns typed as in the schema, the first problem as reason/detail, coordinates.

    The problems are folded into one CASE yielding a (reason, detail) struct so that each
    condition is evaluated once per row.
    """
    verdict: Column | None = None
    for condition, code, text in problems:
        outcome = F.struct(F.lit(code).alias("reason"), text.alias("detail"))
        verdict = (
            F.when(condition, outcome) if verdict is None else verdict.when(condition, outcome)
        )
    if verdict is None:
        raise ValueError("at least one problem check is required")
    rejected = F.col("verdict").isNotNull()
    return events.select("*", _optimizer_barrier(verdict).alias("verdict")).select(
        *[_event_column(field) for field in event_fields],
        F.col("verdict.reason").alias("reason"),
        F.col("verdict.detail").alias("detail"),
        F.when(rejected, F.substring("payload_bytes", 1, options.raw_bytes_kept)).alias(
            "raw_value"
        ),
        F.when(rejected, F.col("raw_length")).alias("raw_length"),
        *[F.col(name) for name in _KAFKA_OUTPUT],
    )


def _event_column(field: T.StructField) -> Column:
    """An event column typed as in the schema; an empty ``extra`` map becomes null."""
    column = F.col(field.name)
    if field.name == "extra":
        column = F.when(F.size(column) > 0, column)
    return column.cast(field.dataType).alias(field.name)


def _optimizer_barrier(column: Column) -> Column:
    """``column`` unchanged, but computed in a projection Spark will not push filters through.

    Spark's optimizer pushes a filter on our output (``valid_events``, a metric's ``where``) down
    through every projection, substituting each column by the expression that computes it. Here
    that would inline the JSON parse and the regex dozens of times into the filter (measured: a
    100x slowdown). Filters are never pushed through a non-deterministic projection, so the
    verdict is made to depend, trivially, on ``spark_partition_id()`` (cheap, never negative).
    """
    return F.when(F.spark_partition_id() >= 0, column)
