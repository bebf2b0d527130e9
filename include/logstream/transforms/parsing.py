"""Parse and validate raw Kafka records into typed events or quarantine rows (SPEC §3).

This is the stream's hot path, so every record is parsed exactly once and everything stays in the
JVM: no Python UDFs, no actions, no I/O. It comes in two halves. The text-level half (decode and
trim the payload, strip its envelope, pick its format, read the JSON object or match the
access-log line, split out the fields as text) is Java, ``jvm/logstream-spark`` (``LogTokens``,
``UserEventTokens``): one pass per record (docs/BENCHMARKS.md). Typing and validation
(timestamps, numbers, the checks and their messages) are the Spark SQL below, so they keep
Spark's own semantics. The same transforms serve the streaming job, the batch replay, the
backfill, ``logstream parse`` and the tests::

    parsed = kafka_records.transform(parse_log_records(ParseOptions.from_settings(settings)))
    events = parsed.transform(valid_events)
    quarantine = parsed.transform(rejected_records)

How a record is read:

* The payload is decoded as UTF-8 with invalid byte sequences replaced by U+FFFD; such records are
  kept (the replacement is visible in the text fields), not rejected. Payloads larger than
  ``max_record_bytes`` are rejected as ``oversized`` before they are decoded or parsed.
* A container or syslog envelope (CRI/containerd, Docker json-file, RFC 3164/5424) is stripped
  first; its metadata goes to ``extra["envelope.*"]`` and its time is the event time of a record
  that has none. A CRI partial line is quarantined as ``partial_line``.
* The record's formats (``logstream.formats``: the configured expression, or the one its Kafka
  key or topic maps to) are tried in order: JSON field mappings on a payload that starts with
  ``{`` (the first whose ``detect`` paths are present), compiled access-log formats on anything
  else; the one that read it is ``source_format``. A payload that fits none is
  ``unrecognized_format``; one that starts like JSON but is not exactly one JSON object (two
  objects back to back included) is ``invalid_json``.
* JSON is read once, as Spark's ``from_json`` would read it into a ``map<string,string>`` (same
  Jackson settings, same rendering of non-string values): the mapped paths become typed columns,
  the other keys stay in ``extra`` (nested objects and arrays as their JSON text; null when there
  are none). A JSON ``null`` counts as missing. Because every value is read as text, ``"200"``
  and ``200`` are the same ``status_code``. Keys are case-sensitive; string values are kept
  verbatim. A key given twice counts once: its first value for a column, its last for ``extra``.
* Event times: ISO-8601 text (without an offset it is read in the session time zone, UTC in
  logstream sessions; ``+0900`` offsets and up to nine fraction digits accepted, cut to the
  microsecond), or an epoch read by magnitude (below 1e11 seconds, 1e14 millis, 1e17 micros,
  else nanos), or an access log's ``dd/MMM/yyyy:HH:mm:ss Z``; a format may give the unit.
* Access-log fields: ``-`` becomes null, as does an empty referrer or user agent; ``\\"`` and
  ``\\\\`` inside quoted fields are unescaped (nginx's ``\\xXX`` escapes are kept as written). A
  request line that is not ``METHOD PATH [PROTOCOL]`` keeps method, path and protocol null;
  ``message`` is always the request line; ``level`` follows the status. A line containing U+0001
  is never an access log (real access logs escape control characters).
* ``service`` is the record's own (JSON mapping), else its Kafka key, else the topic's
  ``service_by_topic``, else ``default_service``: a record is never rejected for lacking one.
  ``ip_address`` comes from the client and X-Forwarded-For fields by the trusted-proxy rule
  (``trusted_proxies``; by default the first address of the list).

Every input row yields exactly one output row. ``reason`` is null for a valid event and otherwise
the first failed check of: empty, oversized, invalid_json / unrecognized_format / partial_line,
missing_timestamp, invalid_timestamp, timestamp_out_of_range (skipped when the Kafka timestamp is
null, as for an archive), missing_field (user events), invalid_field; ``detail`` says which
field and value. For rejected rows the event columns are best-effort leftovers of parsing: use
:func:`valid_events` and :func:`rejected_records` rather than reading them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream import formats, schemas
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.transforms import tokenizer

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
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DETAIL_VALUE_CHARS = 80
_MAX_INT = 2**31 - 1


@dataclass(frozen=True)
class ParseOptions:
    """How records are parsed and what counts as valid (the parsing part of Settings)."""

    format: str = "auto"  # a format expression (logstream.formats)
    max_record_bytes: int = 65_536
    raw_bytes_kept: int = 4_096
    timestamp_max_past_s: int = 7 * 86_400
    timestamp_max_future_s: int = 3_600
    default_service: str = "web"
    auto_formats: str = ""
    access_formats: Mapping[str, str] = field(default_factory=dict)
    json_formats: Mapping[str, object] = field(default_factory=dict)
    format_by_topic: Mapping[str, str] = field(default_factory=dict)
    format_by_key: Mapping[str, str] = field(default_factory=dict)
    service_by_topic: Mapping[str, str] = field(default_factory=dict)
    trusted_proxies: str = ""

    def __post_init__(self) -> None:
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
        self.spec  # every format name and string resolves, or ConfigError now  # noqa: B018

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
            auto_formats=settings.auto_formats,
            access_formats=settings.access_formats,
            json_formats=settings.json_formats,
            format_by_topic=settings.format_by_topic,
            format_by_key=settings.format_by_key,
            service_by_topic=settings.service_by_topic,
            trusted_proxies=settings.trusted_proxies,
        )

    @functools.cached_property
    def spec(self) -> bytes:
        """The JSON the Java tokenizer reads these options from (logstream.formats.parse_spec),
        built once per options object."""
        known = formats.catalog(self.access_formats, self.json_formats, self.auto_formats)
        return formats.parse_spec(
            known,
            self.format,
            max_record_bytes=self.max_record_bytes,
            default_service=self.default_service,
            format_by_topic=self.format_by_topic,
            format_by_key=self.format_by_key,
            service_by_topic=self.service_by_topic,
            trusted_proxies=formats.trusted_proxy_list(self.trusted_proxies),
        )


# -- public transforms -------------------------------------------------------------------------


def parse_log_records(options: ParseOptions) -> Callable[[DataFrame], DataFrame]:
    """Kafka records (``schemas.KAFKA_RECORD``) -> one row each: event, rejection, coordinates.

    Output columns: ``schemas.LOG_EVENT_FIELDS``, ``schemas.REJECTION_FIELDS``, then
    kafka_topic, kafka_partition, kafka_offset, kafka_timestamp.
    """

    def transform(records: DataFrame) -> DataFrame:
        inputs = [
            F.col("value"),
            F.col("key"),
            F.col("topic"),
            F.unix_micros(F.col("timestamp")),
        ]
        tokens = tokenizer.call(records, tokenizer.LOG_TOKENS_FUNCTION, inputs, [options.spec])
        is_access = F.col("is_access")
        events = (
            records.select(*_record_columns(), tokens.alias("tokens"))
            .select("*", "tokens.*")
            # typed fields
            .select(
                "*",
                F.when(
                    F.col("time_layout") == "clf",
                    F.try_to_timestamp("timestamp_text", F.lit(_ACCESS_TIME_FORMAT)),
                )
                .otherwise(_json_event_time(F.col("timestamp_text"), F.col("epoch_micros")))
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
            *_payload_problems(options),
            (
                F.col("problem").isNotNull(),
                F.col("problem"),
                F.col("problem_detail"),
            ),
            *_timestamp_problems(options),
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
        tokens = tokenizer.call(
            records, tokenizer.USER_EVENT_TOKENS_FUNCTION, [F.col("value")], arguments
        )
        events = (
            records.select(*_record_columns(), tokens.alias("tokens"))
            .select(
                "*",
                "tokens.*",
                *[
                    F.lit(None).cast("string").alias(name)
                    for name in ("time_layout", "source_format")
                ],
            )
            .select(
                "*",
                _json_event_time(F.col("timestamp_text"), F.col("epoch_micros")).alias(
                    "event_time"
                ),
                _finite_double(F.col("value_text")).alias("value"),
            )
        )
        problems = [
            *_payload_problems(options),
            *_user_event_format_problems(),
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

#: (condition, reason code, detail); checked in order, the first true condition wins.
Problem = tuple[Column, str | Column, Column]


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


def _json_event_time(text: Column, epoch_micros: Column) -> Column:
    """ISO-8601 text, or an epoch number already read by the tokenizer (``epoch_micros``).

    ISO-8601 text without an offset is read in the session time zone (UTC in logstream sessions);
    offsets may be written without a colon (``+0900``) and fractions beyond microseconds are cut.
    An epoch's unit follows from its magnitude (below 1e11 seconds, below 1e14 millis, below 1e17
    micros, else nanos) and it is cut to the microsecond (``Values.epochMicros`` in the Java
    half, exact decimal arithmetic done once per record there rather than in Spark's decimals).
    A number that is not a plausible time is not read as text either ("2024" is not a date).
    """
    return (
        F.when(epoch_micros.isNotNull(), F.timestamp_micros(epoch_micros))
        .when(text.rlike(_NUMBER), F.lit(None).cast("timestamp"))
        .otherwise(text.try_cast("timestamp"))
    )


def _level_from_status(status: Column) -> Column:
    return F.when(status >= 500, "ERROR").when(status >= 400, "WARN").otherwise("INFO")


def _detail(prefix: str, value: Column, suffix: str) -> Column:
    """``prefix'value'suffix`` with the value cut to a readable length."""
    shown = F.when(
        F.length(value) > _DETAIL_VALUE_CHARS,
        F.concat(F.substring(value, 1, _DETAIL_VALUE_CHARS), F.lit("...")),
    ).otherwise(value)
    return F.concat(F.lit(f"{prefix}'"), shown, F.lit(f"'{suffix}"))


def _payload_problems(options: ParseOptions) -> list[Problem]:
    """Null, empty, oversized and blank payloads."""
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
    ]


def _user_event_format_problems() -> list[Problem]:
    """A user event must be a JSON object."""
    looks_json, is_json = F.col("looks_json"), F.col("is_json")
    return [
        (
            looks_json & ~is_json,
            "invalid_json",
            F.lit("the payload starts like JSON but is not a valid JSON object"),
        ),
        (
            ~is_json,
            "invalid_json",
            F.lit("the payload is expected to be JSON but does not start with '{'"),
        ),
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
            F.when(
                F.col("source_format").isNull(), F.lit("field 'timestamp' is missing or null")
            ).otherwise(
                F.concat(
                    F.lit("no event time: the record has none of the timestamp fields of format "),
                    F.col("source_format"),
                    F.lit(" (map yours with the json_formats setting)"),
                )
            ),
        ),
        (
            event_time.isNull(),
            "invalid_timestamp",
            F.when(
                F.col("time_layout") == "clf",
                _detail("time ", F.col("timestamp_text"), " is not dd/MMM/yyyy:HH:mm:ss Z"),
            ).otherwise(
                _detail(
                    "timestamp ",
                    F.col("timestamp_text"),
                    " is neither ISO-8601 nor an epoch in s/ms/us/ns",
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
        reason = F.lit(code) if isinstance(code, str) else code
        outcome = F.struct(reason.alias("reason"), text.alias("detail"))
        verdict = (
            F.when(condition, outcome) if verdict is None else verdict.when(condition, outcome)
        )
    if verdict is None:
        raise ValueError("at least one problem check is required")
    rejected = F.col("verdict").isNotNull()
    return events.select("*", tokenizer.optimizer_barrier(verdict).alias("verdict")).select(
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
