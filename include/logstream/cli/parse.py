"""``logstream parse FILE``: parse a file offline with the transforms the stream uses (SPEC §10).

Each line of the file (``-``: standard input) is one record, read as raw bytes (so non-UTF-8
bytes reach the parser as they would from Kafka) and given Kafka coordinates: topic ``file``,
partition 0, offset = the line number counted from 0, and no key. Event times are not judged
against the wall clock: an archive is not late. With ``--received-at`` every line gets that Kafka
timestamp and the stream's bounds apply (``timestamp_max_past_s``/``timestamp_max_future_s``).
Lines end at ``\n`` (a ``\r`` before it is dropped); a newline at the end of the file does not
start another record, but a blank line inside the file is a record, and is quarantined as
``empty``. A line longer than ``max_record_bytes`` is quarantined as ``oversized`` without being
held in memory whole. Only regular files and standard input are read.

Valid events go to stdout as JSON lines (timestamps ISO-8601 in UTC, null fields included, Kafka
coordinates last). Quarantined records are summarised on stderr: the first few with their line
number, reason and detail, then the counts by reason. Exit status 0 once the file was read, 2 if
it cannot be read.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from logstream import schemas
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.timeutil import utc_argument
from logstream.transforms.parsing import (
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
    parser.add_argument(
        "file", metavar="FILE", type=Path, help="one record per line; - for standard input"
    )
    parser.add_argument(
        "--format",
        help="a format, group or comma-separated list (e.g. nginx_main, json, auto; see README "
        "'Bring your own logs'); default: the parse_format setting, normally auto",
    )
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="logs",
        help="which topic's records the file holds (default: logs)",
    )
    parser.add_argument(
        "--received-at",
        type=utc_argument,
        metavar="ISO_TIME",
        help="Kafka timestamp given to every line, e.g. 2024-01-15T12:00:00Z; event times are "
        "then checked against it as the stream checks them (default: not checked)",
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
    options = ParseOptions.from_settings(settings)
    try:
        options = replace(
            options,
            format=args.format or options.format,
            default_service=args.service or options.default_service,
        )
    except ConfigError as error:
        return _fail(f"--format: {error}")
    try:
        if str(path) == "-":
            lines, oversized = read_lines(sys.stdin.buffer, options.max_record_bytes)
        else:
            with _open_regular(path) as stream:
                lines, oversized = read_lines(stream, options.max_record_bytes)
    except _UnreadableError as error:
        return _fail(str(error))
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror or exc}")

    received_at = args.received_at
    started_here = SparkSession.getActiveSession() is None
    spark = _session(settings)
    try:
        records = spark.createDataFrame(
            [(None, line, FILE_TOPIC, 0, offset, received_at) for offset, line in enumerate(lines)],
            schemas.KAFKA_RECORD,
        )
        parse = parse_log_records(options) if args.kind == "logs" else parse_user_events(options)
        counts = _write(records.transform(parse), oversized, options.max_record_bytes)
    finally:
        if started_here:
            spark.stop()
    _summarise(path, len(lines), counts)
    return 0


class _UnreadableError(Exception):
    """The path is not something ``logstream parse`` reads."""


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (not a device, FIFO or folder)."""
    try:
        mode = os.stat(path).st_mode  # before opening: opening a FIFO blocks
    except FileNotFoundError:
        raise _UnreadableError(f"{path} does not exist; pass the path of a log file") from None
    if stat.S_ISDIR(mode):
        raise _UnreadableError(f"{path} is a directory; pass the path of a log file")
    if not stat.S_ISREG(mode):
        raise _UnreadableError(
            f"{path} is not a regular file (a device, FIFO or socket); pass a log file, "
            "or - to read standard input"
        )
    return open(path, "rb")


_CHUNK = 1 << 20


def read_lines(stream: BinaryIO, max_record_bytes: int) -> tuple[list[bytes], dict[int, int]]:
    """The stream's records (lines split at ``\n`` without their ``\r\n``/``\n`` ending) and
    the true length of each line cut short: a line longer than ``max_record_bytes`` keeps only
    its first ``max_record_bytes + 1`` bytes (enough to be quarantined as oversized)."""
    keep = max_record_bytes + 1
    lines: list[bytes] = []
    oversized: dict[int, int] = {}
    current = bytearray()
    length = 0  # the current line's true length
    last = b""  # its last byte

    def finish() -> None:
        line = bytes(current)
        if length == len(line):  # held whole
            line = line.removesuffix(b"\r")
        if length - (last == b"\r") > max_record_bytes:
            oversized[len(lines)] = length - (last == b"\r")
        lines.append(line)

    while chunk := stream.read(_CHUNK):
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start:newline]
            length += len(piece)
            last = piece[-1:] or last
            room = keep - len(current)
            if room > 0:
                current += piece[:room]
            if newline < 0:
                break
            finish()
            current.clear()
            length = 0
            last = b""
            start = newline + 1
    if length or current:
        finish()
    return lines, oversized


def split_lines(data: bytes) -> list[bytes]:
    """The records of ``data`` as :func:`read_lines` reads them from a file (no size cap)."""
    import io

    return read_lines(io.BytesIO(data), max(len(data), 1))[0]


def _session(settings: Settings) -> SparkSession:
    from logstream.runtime.spark import build_spark_session

    # an offline parse of a local file runs in local mode whatever the configured master
    return build_spark_session("logstream-parse", settings.replace(spark_master="local[*]"))


def _write(
    parsed: DataFrame, oversized: dict[int, int], max_record_bytes: int
) -> Counter[str | None]:
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
            sys.stdout.write(_TERMINAL_CONTROLS.sub(_json_escape, row.json) + "\n")
        elif counts.total() - counts[None] <= EXAMPLES_SHOWN:
            detail = row.detail
            if row.kafka_offset in oversized:  # the record held only the line's beginning
                detail = (
                    f"the line is {oversized[row.kafka_offset]} bytes, more than "
                    f"max_record_bytes={max_record_bytes}"
                )
            print(
                f"line {row.kafka_offset + 1} (offset {row.kafka_offset}): "
                f"{row.reason}: {_printable(detail)}",
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


#: Characters a terminal acts on that JSON leaves as they are (DEL, C1 controls, bidirectional
#: overrides, line and paragraph separators): log lines are attacker-controlled.
_TERMINAL_CONTROLS = re.compile("[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _printable(text: str | None) -> str | None:
    """``text`` with control characters escaped: log lines are attacker-controlled, and the
    details quote them onto an operator's terminal."""
    if text is None:
        return None
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _fail(message: str) -> int:
    print(f"logstream parse: error: {message}", file=sys.stderr)
    return 2
