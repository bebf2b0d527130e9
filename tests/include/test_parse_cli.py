"""`logstream parse FILE`: the offline parser as an operator meets it (SPEC §10).

The subcommand is exercised in-process through the parser that ``register`` builds, on the test
session's Spark; stdout and stderr are captured.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from logstream.cli import parse as parse_cli
from logstream.config import Settings

RECEIVED_AT = "2024-01-15T12:00:00Z"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logstream")
    parse_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def run_parse(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(["parse", *argv])
    return args.handler(args, settings)


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.log"
    path.write_bytes(
        b'{"timestamp": "2024-01-15T10:30:00.250Z", "service": "api", "status_code": 200, '
        b'"response_time": 0.5, "tenant": "t1"}\n'
        b"\n"  # a blank line inside the file is an (empty) record
        b'2001:db8::7 - alice [15/Jan/2024:11:00:00 +0000] "GET /caf\xe9 HTTP/1.1" 404 - '
        b'"-" "curl/8" 0.010\n'
        b'{"timestamp": "2024-01-15T10:30:00Z", "service": \n'
        b"   \n"
        b'{"timestamp": "2024-01-15T10:30:00Z"}\n'
        b"hello\n"  # the final newline does not start another record
    )
    return path


def test_valid_events_as_json_lines_and_summary_on_stderr(spark, settings, log_file, capsys):
    status = run_parse(settings, str(log_file), "--received-at", RECEIVED_AT)
    out, err = capsys.readouterr()
    assert status == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert events == [
        {
            "event_id": "file:0:0",
            "event_time": "2024-01-15T10:30:00.250000Z",
            "level": None,
            "service": "api",
            "message": None,
            "ip_address": None,
            "user_id": None,
            "request_id": None,
            "response_time": 0.5,
            "status_code": 200,
            "error_code": None,
            "http_method": None,
            "path": None,
            "protocol": None,
            "bytes_sent": None,
            "referrer": None,
            "user_agent": None,
            "vhost": None,
            "forwarded_for": None,
            "extra": {"tenant": "t1"},
            "source_format": "logstream",
            "kafka_topic": "file",
            "kafka_partition": 0,
            "kafka_offset": 0,
            "kafka_timestamp": "2024-01-15T12:00:00.000000Z",
        },
        {
            "event_id": "file:0:2",
            "event_time": "2024-01-15T11:00:00.000000Z",
            "level": "WARN",
            "service": "web",
            "message": "GET /caf\ufffd HTTP/1.1",
            "ip_address": "2001:db8::7",
            "user_id": "alice",
            "request_id": None,
            "response_time": 0.01,
            "status_code": 404,
            "error_code": None,
            "http_method": "GET",
            "path": "/caf\ufffd",
            "protocol": "HTTP/1.1",
            "bytes_sent": None,
            "referrer": None,
            "user_agent": "curl/8",
            "vhost": None,
            "forwarded_for": None,
            "extra": None,
            "source_format": "nginx_request_time",
            "kafka_topic": "file",
            "kafka_partition": 0,
            "kafka_offset": 2,
            "kafka_timestamp": "2024-01-15T12:00:00.000000Z",
        },
        {  # no service field: the default service (SPEC §3), never a quarantine
            "event_id": "file:0:5",
            "event_time": "2024-01-15T10:30:00.000000Z",
            "level": None,
            "service": "web",
            "message": None,
            "ip_address": None,
            "user_id": None,
            "request_id": None,
            "response_time": None,
            "status_code": None,
            "error_code": None,
            "http_method": None,
            "path": None,
            "protocol": None,
            "bytes_sent": None,
            "referrer": None,
            "user_agent": None,
            "vhost": None,
            "forwarded_for": None,
            "extra": None,
            "source_format": "logstream",
            "kafka_topic": "file",
            "kafka_partition": 0,
            "kafka_offset": 5,
            "kafka_timestamp": "2024-01-15T12:00:00.000000Z",
        },
    ]
    assert f"{log_file}: 7 records, 3 parsed, 4 quarantined" in err
    summary = err[err.index("7 records") :].splitlines()[1:]
    assert summary == [
        "  empty: 2",
        "  invalid_json: 1",
        "  unrecognized_format: 1",
    ]
    assert "line 2 (offset 1): empty: the payload is empty" in err
    assert "line 4 (offset 3): invalid_json: " in err
    assert "line 5 (offset 4): empty: the payload is only whitespace" in err


def test_forced_format_and_service(spark, settings, log_file, capsys):
    status = run_parse(
        settings,
        str(log_file),
        "--format",
        "nginx",
        "--service",
        "edge",
        "--received-at",
        "2024-01-15T12:00:00",  # no offset: UTC
    )
    out, err = capsys.readouterr()
    assert status == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [(event["event_id"], event["service"]) for event in events] == [("file:0:2", "edge")]
    assert "7 records, 1 parsed, 6 quarantined" in err
    assert "  unrecognized_format: 4" in err  # both JSON lines, the broken one and "hello"


def test_timestamps_are_checked_against_received_at(spark, settings, log_file, capsys):
    assert run_parse(settings, str(log_file), "--received-at", "2024-02-01T00:00:00Z") == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "  timestamp_out_of_range: 3" in err  # the JSON line without service too


def test_user_events_and_crlf_lines(spark, settings, tmp_path, capsys):
    path = tmp_path / "user-events.jsonl"
    path.write_bytes(
        b'{"timestamp": 1705314600000, "user_id": "u1", "action": "click", "value": 1}\r\n'
        b'{"timestamp": 1705314600000, "user_id": "u1"}\r\n'
    )
    assert (
        run_parse(settings, str(path), "--kind", "user-events", "--received-at", RECEIVED_AT) == 0
    )
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == [
        {
            "event_id": "file:0:0",
            "event_time": "2024-01-15T10:30:00.000000Z",
            "user_id": "u1",
            "action": "click",
            "value": 1.0,
            "session_id": None,
            "ip_address": None,
            "extra": None,
            "kafka_topic": "file",
            "kafka_partition": 0,
            "kafka_offset": 0,
            "kafka_timestamp": "2024-01-15T12:00:00.000000Z",
        }
    ]
    assert "2 records, 1 parsed, 1 quarantined" in err
    assert "line 2 (offset 1): missing_field: required field 'action' is missing" in err


def test_empty_file(spark, settings, tmp_path, capsys):
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    assert run_parse(settings, str(path)) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}: 0 records, 0 parsed, 0 quarantined" in err


def test_only_the_first_rejections_are_listed(spark, settings, tmp_path, capsys):
    path = tmp_path / "junk.log"
    path.write_bytes(b"junk\n" * 12)
    assert run_parse(settings, str(path), "--received-at", RECEIVED_AT) == 0
    _, err = capsys.readouterr()
    assert err.count("unrecognized_format: the payload is neither") == 10
    assert "... and 2 more quarantined records" in err
    assert "  unrecognized_format: 12" in err


def test_missing_file_is_a_clear_error(settings, tmp_path, capsys):
    missing = tmp_path / "nope.log"
    assert run_parse(settings, str(missing)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"logstream parse: error: {missing} does not exist; pass the path of a log file\n"


def test_directory_is_a_clear_error(settings, tmp_path, capsys):
    assert run_parse(settings, str(tmp_path)) == 2
    assert "is a directory" in capsys.readouterr().err


def test_bad_received_at_is_a_usage_error(settings, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_parse(settings, str(tmp_path / "x.log"), "--received-at", "noon")
    assert exit_info.value.code == 2
    assert "'noon' is not an ISO-8601 time" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"", []),
        (b"a", [b"a"]),
        (b"a\n", [b"a"]),
        (b"\n", [b""]),
        (b"a\n\nb\n", [b"a", b"", b"b"]),
        (b"a\r\nb\r\n", [b"a", b"b"]),
        (b"a\n\n", [b"a", b""]),
        (b"\xff\xfe\n", [b"\xff\xfe"]),
    ],
)
def test_split_lines(data, lines):
    assert parse_cli.split_lines(data) == lines


def test_an_archive_is_not_judged_against_the_wall_clock(spark, settings, tmp_path, capsys):
    path = tmp_path / "access-2015.log"
    path.write_bytes(
        b'83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/ HTTP/1.1" 200 7697 '
        b'"-" "Mozilla/5.0"\n'
    )
    assert run_parse(settings, str(path)) == 0
    out, err = capsys.readouterr()
    [event] = [json.loads(line) for line in out.splitlines()]
    assert (event["event_time"], event["kafka_timestamp"]) == ("2015-05-17T10:05:03.000000Z", None)
    assert "1 records, 1 parsed, 0 quarantined" in err


def test_device_files_are_refused(settings, capsys):
    assert run_parse(settings, "/dev/zero") == 2
    assert "/dev/zero is not a regular file" in capsys.readouterr().err


def test_standard_input(spark, settings, capsys, monkeypatch):
    import io

    line = b'{"timestamp": "2024-01-15T10:30:00Z", "service": "api"}\n'
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(line)))
    assert run_parse(settings, "-") == 0
    out, err = capsys.readouterr()
    assert [json.loads(row)["service"] for row in out.splitlines()] == ["api"]
    assert "-: 1 records, 1 parsed, 0 quarantined" in err


def test_a_long_line_is_oversized_without_being_held_whole(spark, settings, tmp_path, capsys):
    path = tmp_path / "long.log"
    path.write_bytes(b"x" * 300_000 + b"\n" + b'{"timestamp": 1705314600, "service": "a"}\n')
    assert run_parse(settings.replace(max_record_bytes=1000), str(path)) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1
    assert (
        "line 1 (offset 0): oversized: the line is 300000 bytes, more than max_record_bytes=1000"
        in err
    )


def test_read_lines_caps_what_it_keeps():
    import io

    lines, oversized = parse_cli.read_lines(io.BytesIO(b"abcdef\r\nab\r\nabcdefgh"), 4)
    assert lines == [b"abcde", b"ab", b"abcde"]  # max_record_bytes + 1 bytes of a long line
    assert oversized == {0: 6, 2: 8}


def test_control_characters_in_details_are_escaped(spark, settings, tmp_path, capsys):
    path = tmp_path / "hostile.log"
    path.write_bytes(b'1.2.3.4 - - [\x1b[31m] "GET / HTTP/1.1" 200 1\n')
    assert run_parse(settings, str(path)) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "invalid_timestamp: time '\\x1b[31m' is not dd/MMM/yyyy:HH:mm:ss Z" in err
