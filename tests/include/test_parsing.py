"""Parsing and validation of raw Kafka records (SPEC §3), on a real local Spark.

Each group of cases is parsed in one Spark job (a module-scoped fixture) and then checked case by
case. Expected values are written out by hand: timestamps as UTC text, fields as literals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from logstream import schemas
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.transforms.parsing import (
    ParseOptions,
    parse_log_records,
    parse_user_events,
    rejected_records,
    valid_events,
    valid_user_events,
)

KAFKA_TS = datetime(2024, 1, 15, 12, 0, 0, tzinfo=UTC)
T0 = "2024-01-15T10:30:00Z"
T0_UTC = "2024-01-15 10:30:00.000000"
TS_TEXT = "yyyy-MM-dd HH:mm:ss.SSSSSS"  # how the tests read timestamps back (session is UTC)
LOG_EVENT_COLUMNS = [f.name for f in schemas.LOG_EVENT_FIELDS if f.name != "event_id"]
USER_EVENT_COLUMNS = [f.name for f in schemas.USER_EVENT_FIELDS if f.name != "event_id"]
KAFKA_OUTPUT = ["kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp"]
_UNSET = object()


@dataclass
class Case:
    """One Kafka record and what parsing must make of it."""

    name: str
    value: bytes | None
    expected: dict[str, Any]  # all non-null event fields, or reason (+ detail, raw_length ...)
    key: bytes | None = None
    kafka_ts: datetime | object | None = _UNSET  # _UNSET: KAFKA_TS


def js(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def json_event(**fields: Any) -> dict[str, Any]:
    return {"source_format": "logstream", **fields}


def access_event(source_format: str = "combined", **fields: Any) -> dict[str, Any]:
    return {"source_format": source_format, "service": "web", **fields}


#: The access-log presets auto tries, in order (cheapest first, the catch-all last), as the README
#: "Bring your own logs" lists them.
AUTO_ACCESS_FORMATS = (
    "apache_common, combined, nginx_request_time, nginx_main, host_combined, nginx_timed, "
    "apache_vhost_combined, apache_combinedio, traefik, ingress_nginx, combined_trailing"
)


def rejected(reason: str, detail: str | None = None, **more: Any) -> dict[str, Any]:
    expected: dict[str, Any] = {"reason": reason, **more}
    if detail is not None:
        expected["detail"] = detail
    return expected


def kafka_frame(spark: SparkSession, cases: list[Case], topic: str = "logs") -> DataFrame:
    rows = [
        (
            case.key,
            case.value,
            topic,
            0,
            offset,
            KAFKA_TS if case.kafka_ts is _UNSET else case.kafka_ts,
        )
        for offset, case in enumerate(cases)
    ]
    return spark.createDataFrame(rows, schemas.KAFKA_RECORD)


def collect(parsed: DataFrame) -> list[dict[str, Any]]:
    """Rows ordered by offset, timestamps rendered as UTC text, maps as dicts."""
    columns = [
        F.date_format(name, TS_TEXT).alias(name)
        if name in ("event_time", "kafka_timestamp")
        else F.col(name)
        for name in parsed.columns
    ]
    return [row.asDict(recursive=True) for row in parsed.select(*columns).collect()]


def parse_cases(
    spark: SparkSession, jobs: dict[str, tuple[Any, list[Case]]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Parse several case lists (each with its own transform) in one Spark job."""
    frames = [
        kafka_frame(spark, cases).transform(transform).select(F.lit(label).alias("job"), "*")
        for label, (transform, cases) in jobs.items()
    ]
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    results: dict[str, dict[str, dict[str, Any]]] = {label: {} for label in jobs}
    for row in collect(union):
        cases = jobs[row["job"]][1]
        results[row["job"]][cases[row["kafka_offset"]].name] = row
    return results


def check(row: dict[str, Any], case: Case, event_columns: list[str]) -> None:
    """Exact comparison: a valid event has exactly the expected non-null fields."""
    expected = case.expected
    if "reason" in expected:
        for name, value in expected.items():
            assert row[name] == value, f"{case.name}: {name}"
        assert row["raw_length"] == (0 if case.value is None else len(case.value))
        if case.value is not None and "raw_value" not in expected:
            assert bytes(row["raw_value"]) == case.value[:4096]
    else:
        actual = {name: row[name] for name in event_columns if row[name] is not None}
        assert actual == expected, case.name
        assert (row["reason"], row["detail"], row["raw_value"], row["raw_length"]) == (
            None,
            None,
            None,
            None,
        ), f"{case.name}: {row['reason']}: {row['detail']}"


# -- JSON application logs, auto-detected ---------------------------------------------------------

OVERSIZED = b'{"timestamp":"2024-01-15T10:30:00Z","service":"api","message":"'
OVERSIZED += b"x" * (70_000 - len(OVERSIZED) - 2) + b'"}'

JSON_CASES = [
    Case(
        "all known fields, ISO with Z",
        js(
            timestamp=T0,
            level="INFO",
            service="checkout",
            message="order placed",
            ip_address="10.0.0.1",
            user_id="u-1",
            request_id="r-1",
            response_time=0.25,
            status_code=201,
            error_code=None,
        ),
        json_event(
            event_time=T0_UTC,
            level="INFO",
            service="checkout",
            message="order placed",
            ip_address="10.0.0.1",
            user_id="u-1",
            request_id="r-1",
            response_time=0.25,
            status_code=201,
        ),
    ),
    Case(
        "ISO with +02:00 offset and millis",
        js(timestamp="2024-01-15T12:30:00.123+02:00", service="api"),
        json_event(event_time="2024-01-15 10:30:00.123000", service="api"),
    ),
    Case(
        "ISO with microseconds",
        js(timestamp="2024-01-15T10:30:00.123456Z", service="api"),
        json_event(event_time="2024-01-15 10:30:00.123456", service="api"),
    ),
    Case(
        "epoch seconds number",
        b'{"timestamp": 1705314600, "service": "api"}',
        json_event(event_time=T0_UTC, service="api"),
    ),
    Case(
        "epoch seconds with a fraction",
        b'{"timestamp": 1705314600.5, "service": "api"}',
        json_event(event_time="2024-01-15 10:30:00.500000", service="api"),
    ),
    Case(
        "epoch seconds string",
        b'{"timestamp": "1705314600", "service": "api"}',
        json_event(event_time=T0_UTC, service="api"),
    ),
    Case(
        "epoch millis number",
        b'{"timestamp": 1705314600123, "service": "api"}',
        json_event(event_time="2024-01-15 10:30:00.123000", service="api"),
    ),
    Case(
        "epoch millis string",
        b'{"timestamp": "1705314600123", "service": "api"}',
        json_event(event_time="2024-01-15 10:30:00.123000", service="api"),
    ),
    Case(
        "unknown fields kept in extra, nested object as JSON text, nulls dropped",
        b'{"timestamp": "2024-01-15T10:30:00Z", "service": "api", "region": "eu-west-1", '
        b'"retries": 3, "ctx": {"a": [1, 2], "b": "x"}, "cached": true, "gone": null}',
        json_event(
            event_time=T0_UTC,
            service="api",
            extra={
                "region": "eu-west-1",
                "retries": "3",
                "ctx": '{"a":[1,2],"b":"x"}',
                "cached": "true",
            },
        ),
    ),
    Case(
        # as Spark's from_json renders non-string values into a string map: numbers re-written
        # by Jackson (doubles shortest, -0 as 0, NaN and overflow as quoted names), exact ints
        "non-string unknown values rendered as Spark's JSON reader renders them",
        b'{"timestamp": "2024-01-15T10:30:00Z", "service": "api", "f": 1.50, "e": 1e5, '
        b'"small": 1.5E-3, "big": 123456789012345678901234567890, "zero": -0, "nan": NaN, '
        b'"huge": 1E400, "list": [ 1 , {"y" : null} ]}',
        json_event(
            event_time=T0_UTC,
            service="api",
            extra={
                "f": "1.5",
                "e": "100000.0",
                "small": "0.0015",
                "big": "123456789012345678901234567890",
                "zero": "0",
                "nan": '"NaN"',
                "huge": '"Infinity"',
                "list": '[1,{"y":null}]',
            },
        ),
    ),
    Case(
        "a key given twice: the first value of a known key, the last of an unknown one",
        b'{"timestamp": "2024-01-15T10:30:00Z", "service": "api", "service": "web", '
        b'"level": null, "level": "WARN", "tag": "a", "tag": null, "tag": "b"}',
        json_event(event_time=T0_UTC, service="api", extra={"tag": "b"}),
    ),
    Case(
        # Spark reads payloads as UTF-8; a UTF-16 document (zero bytes between the characters)
        # is not a JSON object, whatever a byte-level JSON parser would auto-detect
        "a UTF-16LE JSON document is not JSON",
        '{"timestamp": "2024-01-15T10:30:00Z", "service": "api"}'.encode("utf-16-le") + b"}",
        rejected("invalid_json", "the payload starts like JSON but is not a valid JSON object"),
    ),
    Case(
        "a UTF-8 byte order mark is not trimmed: the payload does not start like JSON",
        b'\xef\xbb\xbf{"timestamp": "2024-01-15T10:30:00Z", "service": "api"}',
        rejected(
            "unrecognized_format",
            "the payload is neither a JSON object nor a line in any access-log format tried "
            f"({AUTO_ACCESS_FORMATS})",
        ),
    ),
    Case(
        # the pattern's `$` also matches before a final line terminator (Java regex); what
        # follows the match is kept, as the last group, and checked as nginx's $request_time
        # U+0085 is a line terminator to Java's "$"; a format must match the whole line
        "an access line ending in U+0085 (NEL)",
        b'10.0.0.1 - - [15/Jan/2024:10:30:00 +0000] "GET /a HTTP/1.1" 200 12 "-" "ua"'
        + "\u0085".encode(),
        rejected("unrecognized_format"),
    ),
    Case(
        "anything after the object's closing brace is quarantined, never dropped",
        b'{"timestamp": "2024-01-15T10:30:00Z", "service": "api"} trailing }',
        rejected(
            "invalid_json",
            "the payload is a JSON object followed by more content (two records on one line?); "
            "one record per Kafka message",
        ),
    ),
    Case(
        "two JSON objects back to back: quarantined, not half-read",
        b'{"timestamp": "2024-01-15T10:30:00Z", "service": "api"}'
        b'{"timestamp": "2024-01-15T10:31:00Z", "service": "api"}',
        rejected("invalid_json"),
    ),
    Case(
        "numeric strings for typed fields, HTTP fields given in JSON",
        js(
            timestamp=T0,
            service="api",
            status_code="404",
            response_time="1.5",
            http_method="POST",
            path="/orders",
            bytes_sent=512,
        ),
        json_event(
            event_time=T0_UTC,
            service="api",
            status_code=404,
            response_time=1.5,
            http_method="POST",
            path="/orders",
            bytes_sent=512,
        ),
    ),
    Case(
        "whitespace around the object",
        b' \t{"timestamp": "2024-01-15T10:30:00Z", "service": "api"}\r\n',
        json_event(event_time=T0_UTC, service="api"),
    ),
    Case(
        "vertical tab and form feed around the object are whitespace too",
        b'\x0b{"timestamp": "2024-01-15T10:30:00Z", "service": "api"}\x0c',
        json_event(event_time=T0_UTC, service="api"),
    ),
    Case(
        "a control character at the end is not whitespace",
        b'{"timestamp": "2024-01-15T10:30:00Z", "service": "api"}\x01',
        rejected("invalid_json"),
    ),
    Case(
        "non-UTF-8 bytes are replaced, the event is kept",
        b'{"timestamp": "2024-01-15T10:30:00Z", "service": "api", "message": "caf\xe9 \xff!"}',
        json_event(event_time=T0_UTC, service="api", message="caf\ufffd \ufffd!"),
    ),
    Case(
        "valid UTF-8 is untouched",
        '{"timestamp": "2024-01-15T10:30:00Z", "service": "api", "message": "naïve ☃"}'.encode(),
        json_event(event_time=T0_UTC, service="api", message="naïve ☃"),
    ),
    Case(
        "exactly max_past before the Kafka timestamp is in range",
        js(timestamp="2024-01-08T12:00:00Z", service="api"),
        json_event(event_time="2024-01-08 12:00:00.000000", service="api"),
    ),
    Case(
        "exactly max_future after the Kafka timestamp is in range",
        js(timestamp="2024-01-15T13:00:00Z", service="api"),
        json_event(event_time="2024-01-15 13:00:00.000000", service="api"),
    ),
    Case(
        "no Kafka timestamp: the range is not checked",
        js(timestamp="2020-01-01T00:00:00Z", service="api"),
        json_event(event_time="2020-01-01 00:00:00.000000", service="api"),
        kafka_ts=None,
    ),
    # -- rejections
    Case(
        # no service field: the Kafka key, else the topic's default, else default_service
        "missing service falls back to the default service",
        js(timestamp=T0, message="x"),
        json_event(event_time=T0_UTC, service="web", message="x"),
    ),
    Case(
        "null service falls back to the Kafka key",
        js(timestamp=T0, service=None),
        json_event(event_time=T0_UTC, service="checkout"),
        key=b"checkout",
    ),
    Case(
        "blank service falls back to the default service",
        js(timestamp=T0, service="  "),
        json_event(event_time=T0_UTC, service="web"),
    ),
    Case(
        "missing timestamp",
        js(service="api"),
        rejected(
            "missing_timestamp",
            "no event time: the record has none of the timestamp fields of format logstream "
            "(map yours with the json_formats setting)",
        ),
    ),
    Case("null timestamp", js(timestamp=None, service="api"), rejected("missing_timestamp")),
    Case(
        "unparseable timestamp",
        js(timestamp="yesterday", service="api"),
        rejected(
            "invalid_timestamp",
            "timestamp 'yesterday' is neither ISO-8601 nor an epoch in s/ms/us/ns",
        ),
    ),
    Case("boolean timestamp", js(timestamp=True, service="api"), rejected("invalid_timestamp")),
    Case(
        # 1705314600 s = 2024-01-15T10:30:00Z; the unit follows from the magnitude (README)
        "epoch microseconds",
        js(timestamp=1705314600123456, service="api"),
        json_event(event_time="2024-01-15 10:30:00.123456", service="api"),
    ),
    Case(
        "epoch nanoseconds as text are cut, not rounded, to the microsecond",
        js(timestamp="1705314600123456789", service="api"),
        json_event(event_time="2024-01-15 10:30:00.123456", service="api"),
    ),
    Case(
        # as text: a JSON number is a double, which has no nine fraction digits at this size
        "epoch seconds with nine fraction digits are cut to the microsecond",
        b'{"timestamp": "1705314600.123456999", "service": "api"}',
        json_event(event_time="2024-01-15 10:30:00.123456", service="api"),
    ),
    Case(
        "ISO-8601 with an offset without a colon and nanoseconds",
        js(timestamp="2024-01-15T19:30:00.123456789+0900", service="api"),
        json_event(event_time="2024-01-15 10:30:00.123456", service="api"),
    ),
    Case(
        "ISO-8601 with a decimal comma (log4j, Python logging)",
        js(timestamp="2024-01-15 10:30:00,250", service="api"),
        json_event(event_time="2024-01-15 10:30:00.250000", service="api"),
    ),
    Case(
        "epoch seconds with an exponent (a double as JSON writes it)",
        b'{"timestamp": 1.7053146001E9, "service": "api"}',
        json_event(event_time="2024-01-15 10:30:00.100000", service="api"),
    ),
    Case(
        # floored, not truncated towards zero: -1.5 s is 1.5 s before the epoch
        "a negative epoch is floored to the microsecond",
        js(timestamp="-1.5000005", service="api"),
        json_event(event_time="1969-12-31 23:59:58.499999", service="api"),
        kafka_ts=None,
    ),
    Case(
        "epoch beyond any plausible date",
        b'{"timestamp": 1e20, "service": "api"}',
        rejected("invalid_timestamp"),
    ),
    Case(
        "timestamp too far in the past",
        js(timestamp="2024-01-01T00:00:00Z", service="api"),
        rejected(
            "timestamp_out_of_range",
            "event_time 2024-01-01T00:00:00.000000Z is more than 604800 s before "
            "the Kafka timestamp 2024-01-15T12:00:00.000000Z",
        ),
    ),
    Case(
        "timestamp too far in the future",
        js(timestamp="2024-01-15T13:00:01Z", service="api"),
        rejected(
            "timestamp_out_of_range",
            "event_time 2024-01-15T13:00:01.000000Z is more than 3600 s after "
            "the Kafka timestamp 2024-01-15T12:00:00.000000Z",
        ),
    ),
    Case(
        "status_code not a number",
        js(timestamp=T0, service="api", status_code="abc"),
        rejected("invalid_field", "status_code 'abc' is not an integer in 100..599"),
    ),
    Case(
        "status_code out of range",
        js(timestamp=T0, service="api", status_code=600),
        rejected("invalid_field", "status_code '600' is not an integer in 100..599"),
    ),
    Case(
        "status_code with a fraction",
        b'{"timestamp": "2024-01-15T10:30:00Z", "service": "api", "status_code": 200.5}',
        rejected("invalid_field"),
    ),
    Case(
        "negative response_time",
        js(timestamp=T0, service="api", response_time=-0.5),
        rejected("invalid_field", "response_time '-0.5' is not a non-negative number of seconds"),
    ),
    Case(
        "response_time as words",
        js(timestamp=T0, service="api", response_time="fast"),
        rejected("invalid_field", "response_time 'fast' is not a non-negative number of seconds"),
    ),
    Case(
        "response_time as an object",
        js(timestamp=T0, service="api", response_time={"ms": 5}),
        rejected("invalid_field"),
    ),
    Case(
        "truncated JSON",
        b'{"timestamp": "2024-01-15T10:3',
        rejected("invalid_json", "the payload starts like JSON but is not a valid JSON object"),
    ),
    Case("JSON followed by text", b'{"service": "api"} trailing', rejected("invalid_json")),
    Case("JSON array", b'[{"service": "api"}]', rejected("invalid_json")),
    Case("empty payload", b"", rejected("empty", "the payload is empty")),
    Case("whitespace only", b" \t \r\n", rejected("empty", "the payload is only whitespace")),
    Case(
        "Kafka tombstone",
        None,
        rejected("empty", "the payload is null (a Kafka tombstone)", raw_value=None),
    ),
    Case(
        # RFC 3164 has no year: it is the Kafka timestamp's (2024); a whole minute keeps ":00"
        "a JSON record without a time behind a syslog header takes the header's",
        b'Jan 12 10:00:00 web-1 app[42]: {"service": "api", "message": "x"}',
        json_event(
            event_time="2024-01-12 10:00:00.000000",
            service="api",
            message="x",
            extra={
                "envelope": "syslog",
                "envelope.host": "web-1",
                "envelope.app": "app",
                "envelope.pid": "42",
                "envelope.time": "Jan 12 10:00:00",
            },
        ),
    ),
    Case(
        "December's syslog line read in January belongs to the year before",
        b'Dec 31 23:59:59 web-1 app: {"timestamp": "2023-12-31T23:59:59Z", "service": "api"}',
        json_event(
            event_time="2023-12-31 23:59:59.000000",
            service="api",
            extra={
                "envelope": "syslog",
                "envelope.host": "web-1",
                "envelope.app": "app",
                "envelope.time": "Dec 31 23:59:59",
            },
        ),
        kafka_ts=datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC),
    ),
    Case(
        "Docker json-file: other keys kept, a second object on the line quarantined",
        b'{"log":"{\\"timestamp\\":\\"2024-01-15T10:30:00Z\\",\\"service\\":\\"api\\"}\\n",'
        b'"stream":"stdout","time":"2024-01-15T10:30:00.1Z"}{"log":"x","stream":"stdout"}',
        rejected("invalid_json"),
    ),
    Case(
        "a hostile duration exponent does not take the task down",
        b'{"@t": "2024-01-15T10:30:00Z", "@mt": "x", "Elapsed": "1e-2147483647"}',
        {
            "source_format": "serilog",
            "event_time": T0_UTC,
            "level": "INFO",
            "service": "web",
            "message": "x",
            "response_time": 0.0,
        },
    ),
    Case(
        "a duration of a billion digits is an invalid field, not a billion digits",
        b'{"@timestamp": "2024-01-15T10:30:00Z", "event": {"duration": "1e999999999"}}',
        rejected(
            "invalid_field", "response_time '1e999999999' is not a non-negative number of seconds"
        ),
    ),
    Case(
        "an OpenTelemetry time of a billion digits is an invalid timestamp",
        b'{"timeUnixNano": "1e999999999", "body": "x"}',
        rejected("invalid_timestamp"),
    ),
    Case(
        "neither JSON nor an access log",
        b"hello world",
        rejected(
            "unrecognized_format",
            "the payload is neither a JSON object nor a line in any access-log format tried "
            f"({AUTO_ACCESS_FORMATS})",
        ),
    ),
    Case(
        "oversized payload, raw bytes truncated",
        OVERSIZED,
        rejected(
            "oversized",
            "the payload is 70000 bytes, more than max_record_bytes=65536",
            raw_length=70_000,
        ),
    ),
]

# -- Apache and nginx access logs, auto-detected --------------------------------------------------

OCT_2000 = datetime(2000, 10, 10, 21, 0, 0, tzinfo=UTC)
LONG_PATH = "/" + "a" * 8192
ACCESS_CASES = [
    Case(
        "trailing newline after an access line with a non-ASCII user agent",
        b'10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "bot \xc3\xa9"\n',
        access_event(
            event_time="2000-10-10 20:55:36.000000",
            level="INFO",
            message="GET / HTTP/1.1",
            ip_address="10.0.0.1",
            status_code=200,
            http_method="GET",
            path="/",
            protocol="HTTP/1.1",
            bytes_sent=5,
            user_agent="bot \u00e9",
        ),
        kafka_ts=OCT_2000,
    ),
    Case(
        "Apache Common Log Format",
        b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
        access_event(
            "apache_common",
            event_time="2000-10-10 20:55:36.000000",
            level="INFO",
            message="GET /apache_pb.gif HTTP/1.0",
            ip_address="127.0.0.1",
            user_id="frank",
            status_code=200,
            http_method="GET",
            path="/apache_pb.gif",
            protocol="HTTP/1.0",
            bytes_sent=2326,
        ),
        kafka_ts=OCT_2000,
    ),
    Case(
        "Apache Combined Log Format",
        b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
        b'"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"',
        access_event(
            event_time="2000-10-10 20:55:36.000000",
            level="INFO",
            message="GET /apache_pb.gif HTTP/1.0",
            ip_address="127.0.0.1",
            user_id="frank",
            status_code=200,
            http_method="GET",
            path="/apache_pb.gif",
            protocol="HTTP/1.0",
            bytes_sent=2326,
            referrer="http://www.example.com/start.html",
            user_agent="Mozilla/4.08 [en] (Win98; I ;Nav)",
        ),
        kafka_ts=OCT_2000,
    ),
    Case(
        "nginx combined with $request_time, service from the Kafka key",
        b'203.0.113.9 - - [15/Jan/2024:11:59:58 +0000] "POST /api/orders?id=7 HTTP/2.0" 503 0 '
        b'"-" "curl/8.5.0" 1.234',
        access_event(
            "nginx_request_time",
            event_time="2024-01-15 11:59:58.000000",
            level="ERROR",
            service="shop-frontend",
            message="POST /api/orders?id=7 HTTP/2.0",
            ip_address="203.0.113.9",
            response_time=1.234,
            status_code=503,
            http_method="POST",
            path="/api/orders?id=7",
            protocol="HTTP/2.0",
            bytes_sent=0,
            user_agent="curl/8.5.0",
        ),
        key=b"shop-frontend",
    ),
    Case(
        "IPv6 client and '-' for bytes, empty key means the default service",
        b'2001:db8::1 - - [15/Jan/2024:12:00:00 +0100] "GET /health HTTP/1.1" 404 - '
        b'"-" "kube-probe/1.29"',
        access_event(
            event_time="2024-01-15 11:00:00.000000",
            level="WARN",
            message="GET /health HTTP/1.1",
            ip_address="2001:db8::1",
            status_code=404,
            http_method="GET",
            path="/health",
            protocol="HTTP/1.1",
            user_agent="kube-probe/1.29",
        ),
        key=b"",
    ),
    Case(
        "escaped quotes and backslashes in the request and user agent",
        rb'10.0.0.2 - - [15/Jan/2024:11:00:00 +0000] "GET /search?q=\"quoted\" HTTP/1.1" 200 512 '
        rb'"https://example.com/?a=\"b\"" "Mozilla/5.0 \"Evil\" \\ UA"',
        access_event(
            event_time="2024-01-15 11:00:00.000000",
            level="INFO",
            message='GET /search?q="quoted" HTTP/1.1',
            ip_address="10.0.0.2",
            status_code=200,
            http_method="GET",
            path='/search?q="quoted"',
            protocol="HTTP/1.1",
            bytes_sent=512,
            referrer='https://example.com/?a="b"',
            user_agent='Mozilla/5.0 "Evil" \\ UA',
        ),
    ),
    Case(
        "an 8 KB URL",
        b'10.0.0.5 - - [15/Jan/2024:11:00:00 +0000] "GET '
        + LONG_PATH.encode()
        + b' HTTP/1.1" 414 0 "-" "-"',
        access_event(
            event_time="2024-01-15 11:00:00.000000",
            level="WARN",
            message=f"GET {LONG_PATH} HTTP/1.1",
            ip_address="10.0.0.5",
            status_code=414,
            http_method="GET",
            path=LONG_PATH,
            protocol="HTTP/1.1",
            bytes_sent=0,
        ),
    ),
    Case(
        "request line '-' keeps method, path and protocol null",
        b'10.0.0.3 - - [15/Jan/2024:11:00:00 +0000] "-" 408 0 "-" "-"',
        access_event(
            event_time="2024-01-15 11:00:00.000000",
            level="WARN",
            message="-",
            ip_address="10.0.0.3",
            status_code=408,
            bytes_sent=0,
        ),
    ),
    Case(
        "TLS handshake garbage as the request line",
        rb'10.0.0.4 - - [15/Jan/2024:11:00:00 +0000] "\x16\x03\x01\x00\xa5\x01" 400 157 "-" "-"',
        access_event(
            event_time="2024-01-15 11:00:00.000000",
            level="WARN",
            message=r"\x16\x03\x01\x00\xa5\x01",
            ip_address="10.0.0.4",
            status_code=400,
            bytes_sent=157,
        ),
    ),
    Case(
        "HTTP/0.9 request without protocol",
        b'10.0.0.6 - - [15/Jan/2024:11:00:00 +0000] "GET /" 200 10',
        access_event(
            "apache_common",
            event_time="2024-01-15 11:00:00.000000",
            level="INFO",
            message="GET /",
            ip_address="10.0.0.6",
            status_code=200,
            http_method="GET",
            path="/",
            bytes_sent=10,
        ),
    ),
    Case(
        "non-UTF-8 bytes in the user agent",
        b'10.0.0.7 - - [15/Jan/2024:11:00:00 +0000] "GET / HTTP/1.1" 200 10 "-" "bot \xff\xfe"',
        access_event(
            event_time="2024-01-15 11:00:00.000000",
            level="INFO",
            message="GET / HTTP/1.1",
            ip_address="10.0.0.7",
            status_code=200,
            http_method="GET",
            path="/",
            protocol="HTTP/1.1",
            bytes_sent=10,
            user_agent="bot \ufffd\ufffd",
        ),
    ),
    Case(
        "unparseable time",
        b'10.0.0.8 - - [15/Foo/2024:11:00:00 +0000] "GET / HTTP/1.1" 200 10',
        rejected(
            "invalid_timestamp", "time '15/Foo/2024:11:00:00 +0000' is not dd/MMM/yyyy:HH:mm:ss Z"
        ),
    ),
    Case(
        "status outside 100..599",
        b'10.0.0.9 - - [15/Jan/2024:11:00:00 +0000] "GET / HTTP/1.1" 999 10',
        rejected("invalid_field", "status_code '999' is not an integer in 100..599"),
    ),
    Case(
        "access log too old for its Kafka timestamp",
        b'10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 10',
        rejected("timestamp_out_of_range"),
    ),
    Case(
        "access log with unknown trailing fields: the combined_trailing catch-all",
        b'10.0.0.1 - - [15/Jan/2024:11:00:00 +0000] "GET / HTTP/1.1" 200 10 "-" "-" 0.1 "x"',
        access_event(
            "combined_trailing",
            event_time="2024-01-15 11:00:00.000000",
            level="INFO",
            message="GET / HTTP/1.1",
            ip_address="10.0.0.1",
            status_code=200,
            http_method="GET",
            path="/",
            protocol="HTTP/1.1",
            bytes_sent=10,
            extra={"trailing": '0.1 "x"'},
        ),
    ),
]


@pytest.fixture(scope="module")
def auto_results(spark: SparkSession) -> dict[str, dict[str, dict[str, Any]]]:
    transform = parse_log_records(ParseOptions())
    return parse_cases(
        spark, {"json": (transform, JSON_CASES), "access": (transform, ACCESS_CASES)}
    )


@pytest.mark.parametrize("case", JSON_CASES, ids=lambda case: case.name)
def test_json_logs(auto_results, case: Case):
    check(auto_results["json"][case.name], case, LOG_EVENT_COLUMNS)


@pytest.mark.parametrize("case", ACCESS_CASES, ids=lambda case: case.name)
def test_access_logs(auto_results, case: Case):
    check(auto_results["access"][case.name], case, LOG_EVENT_COLUMNS)


def test_every_record_keeps_its_coordinates(auto_results):
    rows = sorted(auto_results["json"].values(), key=lambda row: row["kafka_offset"])
    assert len(rows) == len(JSON_CASES)
    for offset, row in enumerate(rows):
        assert row["event_id"] == f"logs:0:{offset}"
        assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == (
            "logs",
            0,
            offset,
        )
    assert rows[0]["kafka_timestamp"] == "2024-01-15 12:00:00.000000"


def test_oversized_raw_value_is_truncated_to_raw_bytes_kept(auto_results):
    row = auto_results["json"]["oversized payload, raw bytes truncated"]
    assert len(row["raw_value"]) == 4096
    assert bytes(row["raw_value"]) == OVERSIZED[:4096]


# -- forced formats and non-default options ------------------------------------------------------

JSON_LINE = js(timestamp=T0, service="api")
COMMON_LINE = b'10.0.0.1 - - [15/Jan/2024:11:00:00 +0000] "GET / HTTP/1.1" 200 10'
COMBINED_LINE = COMMON_LINE + b' "-" "curl/8"'
NGINX_LINE = COMBINED_LINE + b" 0.050"
NOT_JSON = "the payload is expected to be JSON but does not start with '{'"
#: The access-log presets in the order auto tries them (README "Bring your own logs").
APACHE_FORMATS = "apache_common, combined, apache_vhost_combined, apache_combinedio"
NGINX_FORMATS = "combined, nginx_request_time, nginx_main, nginx_timed, ingress_nginx"
NOT_APACHE = f"the payload is not a line in any of the access-log formats tried ({APACHE_FORMATS})"
NOT_NGINX = f"the payload is not a line in any of the access-log formats tried ({NGINX_FORMATS})"
JSON_FOR_APACHE = (
    "the payload starts like JSON but only access-log formats are configured for it "
    f"({APACHE_FORMATS})"
)
JSON_FOR_NGINX = (
    "the payload starts like JSON but only access-log formats are configured for it "
    f"({NGINX_FORMATS})"
)
FORMAT_INPUTS = {
    "json": JSON_LINE,
    "common": COMMON_LINE,
    "combined": COMBINED_LINE,
    "nginx": NGINX_LINE,
    "garbage": b"GET / HTTP/1.1",
    "array": b"[1, 2]",
}
#: forced format -> input -> None (valid, with that source_format) or (reason, detail)
FORCED_EXPECTATIONS: dict[str, dict[str, tuple[str, str | None] | str]] = {
    "json": {
        "json": "logstream",
        "common": ("invalid_json", NOT_JSON),
        "combined": ("invalid_json", NOT_JSON),
        "nginx": ("invalid_json", NOT_JSON),
        "garbage": ("invalid_json", NOT_JSON),
        "array": (
            "invalid_json",
            "the payload starts like JSON but is not a valid JSON object",
        ),
    },
    "apache": {
        "json": ("unrecognized_format", JSON_FOR_APACHE),
        "common": "apache_common",
        "combined": "combined",
        "nginx": ("unrecognized_format", NOT_APACHE),
        "garbage": ("unrecognized_format", NOT_APACHE),
        "array": ("unrecognized_format", NOT_APACHE),  # "[" may start an access line
    },
    "nginx": {
        "json": ("unrecognized_format", JSON_FOR_NGINX),
        "common": ("unrecognized_format", NOT_NGINX),
        "combined": "combined",
        "nginx": "nginx_request_time",
        "garbage": ("unrecognized_format", NOT_NGINX),
        "array": ("unrecognized_format", NOT_NGINX),
    },
    "nginx_main": {
        "json": ("unrecognized_format", JSON_FOR_NGINX.replace(NGINX_FORMATS, "nginx_main")),
        "common": ("unrecognized_format", NOT_NGINX.replace(NGINX_FORMATS, "nginx_main")),
        "combined": ("unrecognized_format", NOT_NGINX.replace(NGINX_FORMATS, "nginx_main")),
        "nginx": ("unrecognized_format", NOT_NGINX.replace(NGINX_FORMATS, "nginx_main")),
        "garbage": ("unrecognized_format", NOT_NGINX.replace(NGINX_FORMATS, "nginx_main")),
        "array": ("unrecognized_format", NOT_NGINX.replace(NGINX_FORMATS, "nginx_main")),
    },
    "ecs,apache_common": {
        # no ECS @timestamp, and logstream's mapping is not listed: read as ECS, which finds none
        "json": ("missing_timestamp", None),
        "common": "apache_common",
        "combined": ("unrecognized_format", None),
        "nginx": ("unrecognized_format", None),
        "garbage": ("unrecognized_format", None),
        "array": ("invalid_json", "the payload starts like JSON but is not a valid JSON object"),
    },
}

TIGHT = ParseOptions(
    max_record_bytes=64,
    raw_bytes_kept=10,
    timestamp_max_past_s=60,
    timestamp_max_future_s=10,
    default_service="edge",
)
FITS_64 = b'{"timestamp":"2024-01-15T12:00:00Z","service":"' + b"s" * 15 + b'"}'
assert len(FITS_64) == 64
TIGHT_CASES = [
    Case(
        "exactly max_record_bytes",
        FITS_64,
        json_event(event_time="2024-01-15 12:00:00.000000", service="s" * 15),
    ),
    Case(
        "one byte over max_record_bytes",
        FITS_64[:-2] + b's"}',
        rejected(
            "oversized",
            "the payload is 65 bytes, more than max_record_bytes=64",
            raw_value=bytearray(b'{"timestam'),
        ),
    ),
    Case(
        "raw value cut to raw_bytes_kept",
        b"not a log line at all",
        rejected("unrecognized_format", raw_value=bytearray(b"not a log ")),
    ),
    Case(
        "60 s before",
        js(timestamp="2024-01-15T11:59:00Z", service="a"),
        json_event(event_time="2024-01-15 11:59:00.000000", service="a"),
    ),
    Case(
        "61 s before",
        js(timestamp="2024-01-15T11:58:59Z", service="a"),
        rejected(
            "timestamp_out_of_range",
            "event_time 2024-01-15T11:58:59.000000Z is more than 60 s before "
            "the Kafka timestamp 2024-01-15T12:00:00.000000Z",
            raw_value=bytearray(b'{"timestam'),
        ),
    ),
    Case(
        "10 s after",
        js(timestamp="2024-01-15T12:00:10Z", service="a"),
        json_event(event_time="2024-01-15 12:00:10.000000", service="a"),
    ),
    Case(
        "11 s after",
        js(timestamp="2024-01-15T12:00:11Z", service="a"),
        rejected("timestamp_out_of_range", raw_value=bytearray(b'{"timestam')),
    ),
    Case(
        "access log takes the configured default service",
        b'1.2.3.4 - - [15/Jan/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 1',
        access_event(
            "apache_common",
            event_time="2024-01-15 12:00:00.000000",
            level="INFO",
            service="edge",
            message="GET / HTTP/1.1",
            ip_address="1.2.3.4",
            status_code=200,
            http_method="GET",
            path="/",
            protocol="HTTP/1.1",
            bytes_sent=1,
        ),
    ),
]


@pytest.fixture(scope="module")
def option_results(spark: SparkSession) -> dict[str, dict[str, dict[str, Any]]]:
    format_cases = [Case(name, value, {}) for name, value in FORMAT_INPUTS.items()]
    jobs: dict[str, tuple[Any, list[Case]]] = {
        forced: (parse_log_records(ParseOptions(format=forced)), format_cases)
        for forced in FORCED_EXPECTATIONS
    }
    jobs["tight"] = (parse_log_records(TIGHT), TIGHT_CASES)
    return parse_cases(spark, jobs)


@pytest.mark.parametrize(
    ("forced", "payload"),
    [(forced, payload) for forced in FORCED_EXPECTATIONS for payload in FORMAT_INPUTS],
)
def test_forced_format(option_results, forced: str, payload: str):
    row = option_results[forced][payload]
    expected = FORCED_EXPECTATIONS[forced][payload]
    if isinstance(expected, str):
        assert (row["reason"], row["source_format"]) == (None, expected)
        assert row["event_time"] is not None
    elif expected[1] is None:
        assert row["reason"] == expected[0]
    else:
        assert (row["reason"], row["detail"]) == expected


@pytest.mark.parametrize("case", TIGHT_CASES, ids=lambda case: case.name)
def test_configured_bounds(option_results, case: Case):
    check(option_results["tight"][case.name], case, LOG_EVENT_COLUMNS)


# -- user events -----------------------------------------------------------------------------------

USER_CASES = [
    Case(
        "all fields, epoch millis, unknown field kept",
        b'{"timestamp": 1705314600123, "user_id": "u1", "action": "click", "value": 2.5, '
        b'"session_id": "s1", "ip_address": "10.0.0.1", "page": "/home"}',
        {
            "event_time": "2024-01-15 10:30:00.123000",
            "user_id": "u1",
            "action": "click",
            "value": 2.5,
            "session_id": "s1",
            "ip_address": "10.0.0.1",
            "extra": {"page": "/home"},
        },
    ),
    Case(
        "ISO timestamp, negative value, numeric user id",
        b'{"timestamp": "2024-01-15T10:30:00Z", "user_id": 42, "action": "refund", "value": -3}',
        {"event_time": T0_UTC, "user_id": "42", "action": "refund", "value": -3.0},
    ),
    Case(
        "epoch seconds, value as a numeric string",
        b'{"timestamp": 1705314600, "user_id": "u2", "action": "view", "value": "7"}',
        {"event_time": T0_UTC, "user_id": "u2", "action": "view", "value": 7.0},
    ),
    Case(
        "missing user_id",
        js(timestamp=T0, action="click"),
        rejected("missing_field", "required field 'user_id' is missing, null or blank"),
    ),
    Case(
        "null action",
        js(timestamp=T0, user_id="u1", action=None),
        rejected("missing_field", "required field 'action' is missing, null or blank"),
    ),
    Case(
        "value not a number",
        js(timestamp=T0, user_id="u1", action="click", value="lots"),
        rejected("invalid_field", "value 'lots' is not a finite number"),
    ),
    Case(
        "missing timestamp",
        js(user_id="u1", action="click"),
        rejected("missing_timestamp"),
    ),
    Case(
        "timestamp out of range",
        js(timestamp=1_600_000_000_000, user_id="u1", action="click"),
        rejected("timestamp_out_of_range"),
    ),
    Case("broken JSON", b'{"user_id": ', rejected("invalid_json")),
    Case("an access log line", COMMON_LINE, rejected("invalid_json", NOT_JSON)),
    Case("empty", b"", rejected("empty")),
]


@pytest.fixture(scope="module")
def user_results(spark: SparkSession) -> dict[str, dict[str, Any]]:
    parsed = kafka_frame(spark, USER_CASES, topic="user-events").transform(
        parse_user_events(ParseOptions(format="apache"))  # the format option does not apply
    )
    return {USER_CASES[row["kafka_offset"]].name: row for row in collect(parsed)}


@pytest.mark.parametrize("case", USER_CASES, ids=lambda case: case.name)
def test_user_events(user_results, case: Case):
    check(user_results[case.name], case, USER_EVENT_COLUMNS)


# -- contract: schemas, helpers, plan --------------------------------------------------------------


def _names_and_types(fields) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in fields]


def test_output_columns_follow_the_schemas_contract(spark):
    empty = spark.createDataFrame([], schemas.KAFKA_RECORD)
    kafka = _names_and_types(
        [
            f
            for f in schemas.EVENTS.fields
            if f.name in ("kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp")
        ]
    )
    logs = empty.transform(parse_log_records(ParseOptions()))
    assert _names_and_types(logs.schema.fields) == (
        _names_and_types(schemas.LOG_EVENT_FIELDS)
        + _names_and_types(schemas.REJECTION_FIELDS)
        + kafka
    )
    assert logs.schema["event_id"].nullable is False
    users = empty.transform(parse_user_events(ParseOptions()))
    assert _names_and_types(users.schema.fields) == (
        _names_and_types(schemas.USER_EVENT_FIELDS)
        + _names_and_types(schemas.REJECTION_FIELDS)
        + kafka
    )
    assert valid_events(logs).columns == [f.name for f in schemas.LOG_EVENT_FIELDS] + KAFKA_OUTPUT
    assert valid_user_events(users).columns == (
        [f.name for f in schemas.USER_EVENT_FIELDS] + KAFKA_OUTPUT
    )
    assert rejected_records(logs).columns == (
        [f.name for f in schemas.REJECTION_FIELDS] + KAFKA_OUTPUT
    )
    assert _names_and_types(rejected_records(logs).schema.fields) == _names_and_types(
        schemas.QUARANTINE.fields[: len(schemas.REJECTION_FIELDS) + 4]
    )


def test_valid_and_rejected_split_every_record_once(spark):
    cases = JSON_CASES + ACCESS_CASES
    parsed = kafka_frame(spark, cases).transform(parse_log_records(ParseOptions()))
    valid_offsets = {row.kafka_offset for row in valid_events(parsed).collect()}
    rejected_offsets = {row.kafka_offset for row in rejected_records(parsed).collect()}
    expected_valid = {i for i, case in enumerate(cases) if "reason" not in case.expected}
    assert valid_offsets == expected_valid
    assert rejected_offsets == set(range(len(cases))) - expected_valid


def test_filters_downstream_do_not_re_parse(spark):
    """A filter on the output must not be pushed into the parse (it would run the tokenizer and
    the regular expressions once more per filter), for logs and user events alike."""
    for transform, function, column in (
        (parse_log_records(ParseOptions()), "logstream_log_tokens(", "status_code"),
        (parse_user_events(ParseOptions()), "logstream_user_event_tokens(", "value"),
    ):
        parsed = spark.createDataFrame([], schemas.KAFKA_RECORD).transform(transform)
        query = valid_events(parsed).where(F.col(column) >= 500)
        optimized = query._jdf.queryExecution().optimizedPlan().toString()
        assert optimized.count(function) == 1
        # the filter reads the verdict computed once, not the checks inlined into it
        (condition,) = [line for line in optimized.splitlines() if "Filter " in line]
        assert "isnull(verdict#" in condition and "RLIKE" not in condition.upper()
        physical = query._jdf.queryExecution().executedPlan().toString()
        assert "PythonUDF" not in physical and "EvalPython" not in physical


def test_parse_options_from_settings():
    settings = Settings.load(
        env={},
        parse_format="nginx",
        max_record_bytes=1000,
        raw_bytes_kept=100,
        timestamp_max_past_s=60,
        timestamp_max_future_s=5,
        default_service="edge",
    )
    assert ParseOptions.from_settings(settings) == ParseOptions(
        format="nginx",
        max_record_bytes=1000,
        raw_bytes_kept=100,
        timestamp_max_past_s=60,
        timestamp_max_future_s=5,
        default_service="edge",
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "xml"}, "parse_format: unknown log format 'xml'; known formats and groups: "),
        ({"format": "nginx_main,xml"}, "unknown log format 'xml'"),
        ({"format": " , "}, "parse_format names no log format"),
        ({"trusted_proxies": "10.0.0.0/33"}, "trusted_proxies: '10.0.0.0/33' is not an IP"),
        ({"access_formats": {"mine": "%h %Z"}}, "access_formats.mine: Apache LogFormat directive"),
        (
            {"access_formats": {"mine": "$remote_addr$remote_user"}},
            "two variables with nothing between them",
        ),
        ({"access_formats": {"combined": "$remote_addr -"}}, "is the name of a built-in format"),
        ({"json_formats": {"mine": {"level": ["lvl"]}}}, "must map timestamp"),
        ({"json_formats": {"mine": {"timestamp": "t", "colour": ["c"]}}}, "unknown column"),
        (
            {"json_formats": {"mine": {"timestamp": "t", "timestamp_unit": "fortnights"}}},
            "timestamp_unit='fortnights' must be one of",
        ),
        ({"format_by_topic": {"edge": "nginx_mian"}}, "format_by_topic.edge: unknown log format"),
        ({"max_record_bytes": 0}, "max_record_bytes=0 must be >= 1"),
        ({"timestamp_max_past_s": -1}, "timestamp_max_past_s=-1 must be >= 0"),
        ({"max_record_bytes": 2**31}, "max_record_bytes=2147483648 must be <= 2147483647"),
    ],
)
def test_parse_options_reject_nonsense(changes, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        ParseOptions(**changes)
