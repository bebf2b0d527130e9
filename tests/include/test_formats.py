"""Access-log format strings compile to the Java tokenizer's patterns; names resolve to formats.

Expected targets and groups are written by hand from nginx's and Apache's documentation of each
variable. The patterns are Java regular expressions that Python 3.11's ``re`` reads the same way
(possessive quantifiers included), so the compile tests run without a JVM; the property test at
the end runs random formats through the real tokenizer in Spark.
"""

from __future__ import annotations

import random
import re
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from logstream import formats, schemas
from logstream.errors import ConfigError
from logstream.formats import access
from logstream.transforms.parsing import ParseOptions, parse_log_records, valid_events

COMBINED_TARGETS = (
    "client", "user_id", "time_clf", "request", "status", "bytes", "referrer", "user_agent",
)  # fmt: skip
#: every variable of every preset -> what it becomes, in order
PRESET_TARGETS = {
    "apache_common": (
        "client", "extra:ident", "user_id", "time_clf", "request", "status", "bytes",
    ),
    "combined": (
        "client", "extra:ident", "user_id", "time_clf", "request", "status", "bytes",
        "referrer", "user_agent",
    ),
    "apache_vhost_combined": (
        "vhost", "extra:port", "client", "extra:ident", "user_id", "time_clf", "request",
        "status", "bytes", "referrer", "user_agent",
    ),
    "apache_combinedio": (
        "client", "extra:ident", "user_id", "time_clf", "request", "status", "bytes",
        "referrer", "user_agent", "extra:bytes_received", "extra:bytes_out",
    ),
    "nginx_main": (*COMBINED_TARGETS, "forwarded_for"),
    "nginx_request_time": (*COMBINED_TARGETS, "response_time_s"),
    "nginx_timed": (*COMBINED_TARGETS, "response_time_s", "extra:upstream_response_time"),
    "host_combined": ("vhost", *COMBINED_TARGETS),
    "ingress_nginx": (
        *COMBINED_TARGETS, "extra:request_length", "response_time_s",
        "extra:proxy_upstream_name", "extra:proxy_alternative_upstream_name",
        "extra:upstream_addr", "extra:upstream_response_length",
        "extra:upstream_response_time", "extra:upstream_status", "request_id",
    ),
    "traefik": (
        *COMBINED_TARGETS, "extra:traefik_request_count", "extra:traefik_router_name",
        "extra:traefik_server_url", "response_time_ms",
    ),
    "combined_trailing": (*COMBINED_TARGETS, "extra:trailing"),
}  # fmt: skip

#: a line of each preset, and the text of each of its groups (hand-split)
PRESET_LINES = {
    "apache_common": (
        '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
        ("127.0.0.1", "-", "frank", "10/Oct/2000:13:55:36 -0700",
         "GET /apache_pb.gif HTTP/1.0", "200", "2326"),
    ),
    "apache_vhost_combined": (
        'www.example.com:443 ::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 512 '
        '"-" "curl/8"',
        ("www.example.com", "443", "::1", "-", "-", "10/Oct/2000:13:55:36 -0700",
         "GET / HTTP/1.1", "200", "512", "-", "curl/8"),
    ),
    "apache_combinedio": (
        '10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 512 "-" "curl/8" 120 700',
        ("10.0.0.1", "-", "-", "10/Oct/2000:13:55:36 -0700", "GET / HTTP/1.1", "200", "512",
         "-", "curl/8", "120", "700"),
    ),
    "nginx_main": (
        '10.0.0.5 - - [15/Sep/2023:16:13:46 +0000] "GET /b HTTP/1.1" 404 10 "-" "curl/8" '
        '"203.0.113.9, 10.0.0.7"',
        ("10.0.0.5", "-", "15/Sep/2023:16:13:46 +0000", "GET /b HTTP/1.1", "404", "10", "-",
         "curl/8", "203.0.113.9, 10.0.0.7"),
    ),
    "nginx_timed": (
        'localhost - - [15/Sep/2023:16:13:46 +0000] "GET /d HTTP/1.1" 502 5 "-" "x" 0.005 '
        "0.001, 0.004 : 0.002",
        ("localhost", "-", "15/Sep/2023:16:13:46 +0000", "GET /d HTTP/1.1", "502", "5", "-",
         "x", "0.005", "0.001, 0.004 : 0.002"),
    ),
    "ingress_nginx": (
        '::1 - bob [15/Sep/2023:16:13:46 +0000] "POST /api HTTP/2.0" 201 22 "-" "ua" 300 0.010 '
        "[default-api-80] [] 10.1.0.5:8080, 10.1.0.6:8080 0, 22 0.004, 0.006 502, 201 "
        "5f2c0d7e9a",
        ("::1", "bob", "15/Sep/2023:16:13:46 +0000", "POST /api HTTP/2.0", "201", "22", "-",
         "ua", "300", "0.010", "default-api-80", "", "10.1.0.5:8080, 10.1.0.6:8080", "0, 22",
         "0.004, 0.006", "502, 201", "5f2c0d7e9a"),
    ),
    "traefik": (
        '192.168.0.2 - - [15/Sep/2023:16:13:46 +0000] "GET /whoami HTTP/1.1" 200 712 "-" '
        '"curl/8" 17 "whoami@docker" "http://172.18.0.3:80" 3ms',
        ("192.168.0.2", "-", "15/Sep/2023:16:13:46 +0000", "GET /whoami HTTP/1.1", "200",
         "712", "-", "curl/8", "17", "whoami@docker", "http://172.18.0.3:80", "3"),
    ),
}  # fmt: skip


def test_every_target_is_a_column_the_tokenizer_reads():
    java = (
        Path(__file__).resolve().parents[2]
        / "jvm/logstream-spark/src/main/java/dev/logstream/spark/LogTokens.java"
    ).read_text()
    read = set(re.findall(r'case "([a-z_]+)":', java))
    assert read >= access.COLUMNS
    targets = {t for found in access.presets().values() for t in found.targets}
    assert {t for t in targets if not t.startswith("extra:")} <= access.COLUMNS


def test_every_preset_compiles_to_the_documented_targets():
    compiled = access.presets()
    assert {name: found.targets for name, found in compiled.items()} == PRESET_TARGETS
    # cheapest first, the catch-all last (README "Bring your own logs")
    costs = [found.cost for found in list(compiled.values())[:-1]]
    assert costs == sorted(costs)
    assert list(compiled)[-1] == "combined_trailing"


@pytest.mark.parametrize("name", sorted(PRESET_LINES))
def test_a_preset_pattern_splits_its_line_into_its_groups(name: str):
    line, groups = PRESET_LINES[name]
    match = re.fullmatch(access.presets()[name].pattern, line)
    assert match is not None
    assert match.groups() == groups


@pytest.mark.parametrize("name", sorted(PRESET_LINES))
def test_a_preset_line_matches_no_cheaper_preset(name: str):
    line, _ = PRESET_LINES[name]
    matching = [
        other for other, found in access.presets().items() if re.fullmatch(found.pattern, line)
    ]
    assert matching[0] == name


@pytest.mark.parametrize(
    ("text", "syntax", "targets"),
    [
        (  # the whole directive, pasted over several lines, escape= included
            "log_format edge escape=json '$remote_addr [$time_local] '\n"
            "                    '\"$request\" $status $request_time';",
            "nginx",
            ("client", "time_clf", "request", "status", "response_time_s"),
        ),
        (
            'LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" timed',
            "apache",
            ("client", "extra:ident", "user_id", "time_clf", "request", "status", "bytes",
             "response_time_us"),
        ),
        (
            '%a %{X-Forwarded-For}i %V %{ms}T %m %U%q %H "%{Cookie}i" %%done',
            "apache",
            ("client", "forwarded_for", "vhost", "response_time_ms", "http_method", "path",
             "protocol", "extra:http_cookie"),
        ),
        (
            "${host}:$server_port $msec $request_method $uri$is_args$args $server_protocol "
            '"$http_x_forwarded_for" $request_id $body_bytes_sent/$bytes_sent',
            "nginx",
            ("vhost", "extra:server_port", "time_epoch_s", "http_method", "path", "protocol",
             "forwarded_for", "request_id", "bytes", "extra:bytes_sent"),
        ),
    ],
)  # fmt: skip
def test_pasted_formats_compile(text: str, syntax: str, targets: tuple[str, ...]):
    compiled = access.compile_format("mine", text)
    assert (compiled.syntax, compiled.targets) == (syntax, targets)


def test_apache_time_directive_brings_its_brackets():
    compiled = access.compile_format("t", "%h %t %>s")
    assert re.fullmatch(compiled.pattern, "1.2.3.4 [10/Oct/2000:13:55:36 -0700] 200").groups() == (
        "1.2.3.4",
        "10/Oct/2000:13:55:36 -0700",
        "200",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$remote_addr$remote_user", "two variables with nothing between them"),
        ("%h %Z", "Apache LogFormat directive %Z is not one logstream knows"),
        ("$remote_adr - [$time_local]", r"unknown nginx variable \$remote_adr; did you mean"),
        ("[$time_local] $request_time %T", "cannot tell whether"),
        ("plain text", "cannot tell whether access-log format"),
        ("   ", "is empty"),
    ],
)
def test_bad_formats_are_config_errors(text: str, message: str):
    with pytest.raises(ConfigError, match=message):
        access.compile_format("mine", text)


def test_an_unknown_but_plausible_nginx_variable_goes_to_extra():
    compiled = access.compile_format(
        "mine", "$remote_addr [$time_local] $my_tenant_id ${remote_adr} $request_uuid"
    )
    assert compiled.targets == (
        "client", "time_clf", "extra:my_tenant_id", "extra:remote_adr", "extra:request_uuid",
    )  # fmt: skip


def test_a_second_time_or_duration_goes_to_extra():
    nginx = access.compile_format("t", "[$time_local] $msec $request_time $status")
    assert nginx.targets == ("time_clf", "extra:msec", "response_time_s", "status")
    apache = access.compile_format("t", "%h %t %T/%D %>s")
    assert apache.targets == (
        "client",
        "time_clf",
        "response_time_s",
        "extra:duration_us",
        "status",
    )


def test_http_host_may_carry_a_port_but_host_never_does():
    assert re.fullmatch(
        access.compile_format("h", "$http_host $remote_addr [$time_local]").pattern,
        "example.com:8080 10.0.0.1 [15/Jan/2024:10:30:00 +0000]",
    )
    assert not re.fullmatch(
        access.compile_format("h", "$host $remote_addr [$time_local]").pattern,
        "example.com:8080 10.0.0.1 [15/Jan/2024:10:30:00 +0000]",
    )


def test_a_pathological_line_fails_fast_on_every_pattern():
    """No pattern backtracks: each character is looked at a bounded number of times, so a 100 KB
    near-miss is rejected by every preset (timings are in bench/, this only checks the match)."""
    line = '1.2.3.4 - - [15/Sep/2023:16:13:46 +0000] "GET /' + 'a\\"' * 30_000 + " 200 1"
    for found in access.presets().values():
        assert re.fullmatch(found.pattern, line) is None


def test_format_expressions_resolve_to_names():
    known = formats.catalog()
    assert known.expand("apache") == [
        "apache_common", "combined", "apache_vhost_combined", "apache_combinedio",
    ]  # fmt: skip
    assert known.expand("bunyan, winston,logrus") == ["pino", "logstream", "zerolog"]
    assert known.expand("nginx_main,combined,nginx_main") == ["nginx_main", "combined"]
    assert known.expand("auto")[:3] == ["apache_common", "combined", "nginx_request_time"]
    assert "ecs" in known.expand("json") and "traefik" not in known.expand("json")
    with pytest.raises(ConfigError, match="unknown log format 'nginx_mian'"):
        known.expand("nginx_mian")


def test_own_formats_come_first_and_can_narrow_auto():
    known = formats.catalog(
        {"edge": "$remote_addr [$time_local] $status"},
        {"app": {"timestamp": ["ts"], "message": "text"}},
        auto_formats="edge,app,ecs",
    )
    assert known.expand("auto") == ["edge", "app", "ecs"]
    assert formats.catalog({"edge": "$remote_addr [$time_local]"}).auto[0] == "edge"


# -- the property: random formats and lines generated from them parse back ------------------------

_SEPARATORS = [" ", " - ", " | ", ", ", "; ", " :: "]
_T0 = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def _word(rng: random.Random, alphabet: str, low: int = 1, high: int = 12) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def _generated(rng: random.Random, index: int) -> tuple[str, bytes, dict[str, Any]]:
    """A random nginx log_format, one line written in it, and what that line holds."""
    safe = string.ascii_letters + string.digits + "._/"
    variables = {
        "remote_addr": lambda: rng.choice(
            ["10.0.0.1", "2001:db8::7", "localhost", "unix:", "203.0.113.9"]
        ),
        "remote_user": lambda: rng.choice(["-", _word(rng, string.ascii_lowercase)]),
        "status": lambda: str(rng.randint(100, 599)),
        "body_bytes_sent": lambda: rng.choice(["-", str(rng.randint(0, 10**9))]),
        "request_time": lambda: f"{rng.randint(0, 99)}.{rng.randint(0, 999):03d}",
        "host": lambda: rng.choice(["example.com", "api.internal", "-"]),
        "request_id": lambda: _word(rng, "0123456789abcdef", 8, 32),
        "upstream_addr": lambda: ", ".join(
            f"10.1.0.{rng.randint(1, 9)}:80" for _ in range(rng.randint(1, 3))
        ),
        "tenant": lambda: _word(rng, safe),
    }
    quoted = {
        "http_user_agent": lambda: "".join(
            rng.choice([*safe, " ", ";", "(", ")", '\\"', "\\\\"])
            for _ in range(rng.randint(1, 40))
        ),
        "http_referer": lambda: rng.choice(["-", "https://example.com/a?b=c"]),
        "http_x_forwarded_for": lambda: ", ".join(
            f"198.51.100.{rng.randint(1, 250)}" for _ in range(rng.randint(1, 3))
        ),
    }
    chosen = rng.sample(sorted(variables), rng.randint(1, 5))
    chosen_quoted = rng.sample(sorted(quoted), rng.randint(0, 3))
    pieces: list[tuple[str, str]] = [("time_local", "[$time_local]")]
    pieces += [(name, f"${name}") for name in chosen]
    pieces += [(name, f'"${name}"') for name in chosen_quoted]
    rng.shuffle(pieces)
    # a list (client, upstreams) runs on at ", ": the author of such a format separates it otherwise
    lists = {"remote_addr", "upstream_addr"}
    separators = [
        rng.choice([sep for sep in _SEPARATORS if sep != ", " or previous not in lists])
        for previous, _ in pieces[:-1]
    ]
    moment = _T0 + timedelta(seconds=rng.randint(0, 86_400))
    values = {name: variables[name]() for name in chosen}
    values |= {name: quoted[name]() for name in chosen_quoted}
    values["time_local"] = moment.strftime("%d/%b/%Y:%H:%M:%S +0000")
    # a separator may not appear in the unquoted values around it: keep generated values free of
    # them by construction (the format's author chose separators their values never contain)
    fmt_parts, line_parts = [], []
    for position, (name, piece) in enumerate(pieces):
        if position:
            fmt_parts.append(separators[position - 1])
            line_parts.append(separators[position - 1])
        fmt_parts.append(piece)
        line_parts.append(piece.replace(f"${name}", values[name]))
    fmt = "".join(fmt_parts)
    return fmt, "".join(line_parts).encode(), {"values": values, "moment": moment}


def _expected(values: dict[str, str], moment: datetime) -> dict[str, Any]:
    def text(name: str) -> str | None:
        value = values.get(name)
        return None if value in (None, "", "-") else value

    unescaped = {
        name: re.sub(r'\\(["\\])', r"\1", values[name])
        for name in ("http_user_agent", "http_referer")
        if name in values
    }
    forwarded = text("http_x_forwarded_for")
    client = text("remote_addr")
    status = values.get("status")
    expected: dict[str, Any] = {
        "event_time": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "ip_address": forwarded.split(",")[0].strip() if forwarded else client,
        "user_id": text("remote_user"),
        "status_code": int(status) if status else None,
        "bytes_sent": int(values["body_bytes_sent"]) if text("body_bytes_sent") else None,
        "response_time": float(values["request_time"]) if "request_time" in values else None,
        "vhost": text("host"),
        "request_id": text("request_id"),
        "user_agent": unescaped.get("http_user_agent") or None,
        "referrer": None
        if unescaped.get("http_referer") in (None, "-")
        else values["http_referer"],
        "forwarded_for": forwarded,
    }
    extra = {name: values[name] for name in ("upstream_addr", "tenant") if name in values}
    expected["extra"] = extra or None
    return expected


def test_random_formats_parse_their_lines_back(spark: SparkSession):
    rng = random.Random(20261206)
    cases = [_generated(rng, index) for index in range(150)]
    own = {f"f{index}": fmt for index, (fmt, _, _) in enumerate(cases)}
    options = ParseOptions(
        format="access", access_formats=own, format_by_key={name: name for name in own}
    )
    rows = [
        (f"f{index}".encode(), line, "logs", 0, index, None)
        for index, (_, line, _) in enumerate(cases)
    ]
    parsed = spark.createDataFrame(rows, schemas.KAFKA_RECORD).transform(parse_log_records(options))
    rejected = (
        parsed.where("reason IS NOT NULL").select("kafka_offset", "reason", "detail").collect()
    )
    assert not rejected, [
        (row.kafka_offset, row.reason, cases[row.kafka_offset][:2]) for row in rejected
    ]
    events = valid_events(parsed).withColumn(
        "event_time", F.date_format("event_time", "yyyy-MM-dd HH:mm:ss")
    )
    found = {row.kafka_offset: row.asDict() for row in events.collect()}
    for index, (fmt, line, truth) in enumerate(cases):
        row = found[index]
        expected = _expected(truth["values"], truth["moment"])
        actual = {name: row[name] for name in expected}
        assert actual == expected, (fmt, line)
        assert row["source_format"] == f"f{index}"


def test_topic_and_key_routes_service_fallbacks_and_trusted_proxies(spark: SparkSession):
    options = ParseOptions(
        format="json",
        format_by_topic={"edge": "nginx_main"},
        format_by_key={"legacy": "apache_common"},
        service_by_topic={"edge": "edge-proxy"},
        trusted_proxies="10.0.0.0/8, 2001:db8::/32",
    )
    main_line = (
        b'10.0.0.5 - - [15/Jan/2024:10:30:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" '
        b'"198.51.100.7, 203.0.113.9, 10.0.0.8"'
    )
    common_line = b'2001:db8::9 - - [15/Jan/2024:10:30:00 +0000] "GET / HTTP/1.1" 200 1'
    records = [
        (None, main_line, "edge", 0, 0, None),  # the topic's format and service
        (b"legacy", common_line, "edge", 0, 1, None),  # the key wins over the topic
        (None, common_line, "logs", 0, 2, None),  # neither: the configured json
        (b"billing", b'{"timestamp": "2024-01-15T10:30:00Z"}', "logs", 0, 3, None),
        # not addresses (1.2.3.999 would be a DNS name to the JDK): the header is not used
        (None, main_line.replace(b"198.51.100.7", b"1.2.3.999"), "edge", 0, 4, None),
    ]
    rows = (
        spark.createDataFrame(records, schemas.KAFKA_RECORD)
        .transform(parse_log_records(options))
        .orderBy("kafka_offset")
        .collect()
    )
    assert [
        (row.reason, row.source_format, row.service, row.ip_address, row.forwarded_for)
        for row in rows
    ] == [
        # walking from the right past the trusted 10.0.0.8, the client is 203.0.113.9
        (None, "nginx_main", "edge-proxy", "203.0.113.9", "198.51.100.7, 203.0.113.9, 10.0.0.8"),
        # a lone client is the client, trusted or not
        (None, "apache_common", "legacy", "2001:db8::9", None),
        ("invalid_json", None, None, None, None),
        (None, "logstream", "billing", None, None),  # no service field: the Kafka key
        (None, "nginx_main", "edge-proxy", "10.0.0.5", "1.2.3.999, 203.0.113.9, 10.0.0.8"),
    ]


#: JSON presets the real-world corpus has no sample of: records written after each project's
#: documentation, expected values worked out by hand (1705314600 s = 2024-01-15T10:30:00Z)
DOCUMENTED_RECORDS = [
    (
        "otel",
        b'{"timeUnixNano": "1705314600123456789", "severityNumber": 17, "severityText": "ERROR",'
        b' "body": {"stringValue": "payment failed"},'
        b' "traceId": "5b8efff798038103d269b633813fc60c",'
        b' "attributes": [{"key": "http.request.method", "value": {"stringValue": "POST"}}],'
        b' "resource": {"attributes":'
        b' [{"key": "service.name", "value": {"stringValue": "cart"}}]}}',
        {
            "event_time": "2024-01-15 10:30:00.123456",
            "level": "ERROR",
            "service": "cart",
            "message": "payment failed",
            "http_method": "POST",
            "request_id": "5b8efff798038103d269b633813fc60c",
        },
    ),
    (
        "loguru",
        b'{"text": "2024-01-15 10:30:00.250 | WARNING | app:run:7 - slow\\n", "record": {"elapsed":'
        b' {"repr": "0:00:01", "seconds": 1.0},'
        b' "level": {"icon": "!", "name": "WARNING", "no": 30},'
        b' "message": "slow", "name": "app", "time": {"repr": "2024-01-15 10:30:00.250000+00:00",'
        b' "timestamp": 1705314600.25}}}',
        {"event_time": "2024-01-15 10:30:00.250000", "level": "WARN", "service": "app"},
    ),
    (
        "nginx_json",
        b'{"time_local": "15/Jan/2024:11:30:00 +0100", "remote_addr": "203.0.113.9",'
        b' "request": "GET /a?b=1 HTTP/2.0", "status": "404", "body_bytes_sent": "12",'
        b' "request_time": "0.004", "http_user_agent": "curl/8"}',
        {
            "event_time": "2024-01-15 10:30:00.000000",
            "ip_address": "203.0.113.9",
            "http_method": "GET",
            "path": "/a?b=1",
            "protocol": "HTTP/2.0",
            "status_code": 404,
            "bytes_sent": 12,
            "response_time": 0.004,
            "message": "GET /a?b=1 HTTP/2.0",
        },
    ),
    (
        "nginx_json_iso",
        b'{"time_iso8601": "2024-01-15T11:30:00+01:00", "remote_addr": "::1", "status": 200}',
        {"event_time": "2024-01-15 10:30:00.000000", "ip_address": "::1", "status_code": 200},
    ),
    (
        "log4j2_millis",
        b'{"timeMillis": 1705314600250, "thread": "main", "level": "DEBUG",'
        b' "loggerName": "com.example.Billing", "message": "charged"}',
        {
            "event_time": "2024-01-15 10:30:00.250000",
            "level": "DEBUG",
            "service": "com.example.Billing",
            "message": "charged",
        },
    ),
]


def test_json_presets_without_a_corpus_sample(spark: SparkSession):
    rows = [
        (None, record, "logs", 0, offset, None)
        for offset, (_, record, _) in enumerate(DOCUMENTED_RECORDS)
    ]
    parsed = (
        spark.createDataFrame(rows, schemas.KAFKA_RECORD)
        .transform(parse_log_records(ParseOptions()))
        .withColumn("event_time", F.date_format("event_time", "yyyy-MM-dd HH:mm:ss.SSSSSS"))
        .orderBy("kafka_offset")
        .collect()
    )
    for row, (preset, _, expected) in zip(parsed, DOCUMENTED_RECORDS, strict=True):
        assert (row.reason, row.source_format) == (None, preset), row.detail
        assert {name: row[name] for name in expected} == expected, preset
