"""``logstream parse FILE``: parse a file offline with the transforms the stream uses (SPEC §10).

Each line of the file is one record, read as raw bytes (so non-UTF-8 bytes reach the parser as
they would from Kafka) and given Kafka coordinates: topic ``file``, partition 0, offset = the line
number counted from 0, no key, and a Kafka timestamp of now (or ``--received-at``), against which
the timestamp bounds are checked. Lines end at ``\\n`` (a ``\\r`` before it is dropped); a
newline at the end of the file does not start another record, but a blank line inside the file is
a record, and is quarantined as ``empty``.

Valid events go to stdout as JSON lines (timestamps ISO-8601 in UTC, null fields included, Kafka
coordinates last). Quarantined records are summarised on stderr: the first few with their line
number, reason and detail, then the counts by reason. Exit status 0 once the file was read, 2 if
it cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from logstream import schemas
from logstream.config import Settings
from logstream.parsing import (
    FORMATS,
    ParseOptions,
    parse_log_records,
    parse_user_events,
    valid_events,
)

KINDS = ("logs", "user-events")
#: Kafka topic name given to the file's records.
FILE_TOPIC = "file"
#: How many quarantined records are shown individually on stderr.
EXAMPLES_SHOWN = 10
_JSON_OPTIONS = {
    "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "timeZone": "UTC",
    "ignoreNullFields": "false",
}


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``parse`` subcommand to a ``logstream`` subparsers object; returns its parser."""
    parser = subparsers.add_parser(
        "parse",
        help="parse a log file offline with the stream's parser; JSON lines out",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="one record per line")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="record format (default: the parse_format setting, normally auto)",
    )
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="logs",
        help="which topic's records the file holds (default: logs)",
    )
    parser.add_argument(
        "--received-at",
        type=_utc_datetime,
        metavar="ISO_TIME",
        help="Kafka timestamp given to every line, e.g. 2024-01-15T12:00:00Z (default: now); "
        "event times are checked against it",
    )
    parser.add_argument(
        "--service",
        help="service of access-log lines (default: the default_service setting)",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Parse ``args.file``; valid events to stdout, a summary to stderr. 0 if read, 2 if not."""
    path: Path = args.file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _fail(f"{path} does not exist; pass the path of a log file")
    except IsADirectoryError:
        return _fail(f"{path} is a directory; pass the path of a log file")
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror or exc}")

    options = ParseOptions.from_settings(settings)
    options = replace(
        options,
        format=args.format or options.format,
        default_service=args.service or options.default_service,
    )
    received_at = args.received_at or datetime.now(UTC)
    lines = split_lines(data)

    started_here = SparkSession.getActiveSession() is None
    spark = _session(settings)
    try:
        records = spark.createDataFrame(
            [(None, line, FILE_TOPIC, 0, offset, received_at) for offset, line in enumerate(lines)],
            schemas.KAFKA_RECORD,
        )
        parse = parse_log_records(options) if args.kind == "logs" else parse_user_events(options)
        counts = _write(records.transform(parse))
    finally:
        if started_here:
            spark.stop()
    _summarise(path, len(lines), counts)
    return 0


def split_lines(data: bytes) -> list[bytes]:
    """The file's records: lines split at ``\\n`` without their ``\\r\\n``/``\\n`` ending."""
    lines = data.split(b"\n")
    if lines[-1] == b"":  # a final newline ends the last line; it does not start a new one
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


def _session(settings: Settings) -> SparkSession:
    from logstream.spark import build_spark_session

    # an offline parse of a local file runs in local mode whatever the configured master
    return build_spark_session("logstream-parse", settings.replace(spark_master="local[*]"))


def _write(parsed: DataFrame) -> Counter[str | None]:
    """Print valid events as JSON lines and the first rejections; count rows by reason."""
    event_columns = valid_events(parsed).columns
    rows = parsed.select(
        F.when(F.col("reason").isNull(), F.to_json(F.struct(*event_columns), _JSON_OPTIONS)).alias(
            "json"
        ),
        "reason",
        "detail",
        "kafka_offset",
    )
    counts: Counter[str | None] = Counter()
    for row in rows.toLocalIterator():
        counts[row.reason] += 1
        if row.reason is None:
            sys.stdout.write(row.json + "\n")
        elif counts.total() - counts[None] <= EXAMPLES_SHOWN:
            print(
                f"line {row.kafka_offset + 1} (offset {row.kafka_offset}): "
                f"{row.reason}: {row.detail}",
                file=sys.stderr,
            )
    sys.stdout.flush()
    return counts


def _summarise(path: Path, total: int, counts: Counter[str | None]) -> None:
    parsed = counts.pop(None, 0)
    quarantined = counts.total()
    if quarantined > EXAMPLES_SHOWN:
        print(f"... and {quarantined - EXAMPLES_SHOWN} more quarantined records", file=sys.stderr)
    print(
        f"{path}: {total} records, {parsed} parsed, {quarantined} quarantined",
        file=sys.stderr,
    )
    known = [reason for reason in schemas.REASONS if reason in counts]
    for reason in [*known, *sorted(set(counts) - set(known))]:
        print(f"  {reason}: {counts[reason]}", file=sys.stderr)


def _utc_datetime(text: str) -> datetime:
    """An ISO-8601 time for ``--received-at``; without an offset it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time such as 2024-01-15T12:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fail(message: str) -> int:
    print(f"logstream parse: error: {message}", file=sys.stderr)
    return 2
