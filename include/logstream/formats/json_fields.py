"""JSON field mapping as data: which JSON paths feed which event column, and in what unit.

A JSON format maps each event column to a list of paths, tried in order; a path is dotted for
nested objects (``http.request.method``) and matches a literal dotted key too (ECS loggers write
``"log.level"`` flat). OpenTelemetry's attribute lists (``[{"key": k, "value": {"stringValue":
v}}]``) are read as objects keyed by ``k``. A ``+`` joins two paths that together make one
value (log4j2's ``instant.epochSecond+instant.nanoOfSecond``).

``detect`` lists the paths that must all be present for ``auto`` to pick the format for a record;
formats are tried in the order of :data:`PRESETS`, most specific first, and a record that none
detects is read with logstream's own when it is among the candidates (else the first listed).
Units: timestamps are ``auto`` (ISO-8601 text, or an epoch whose unit follows from its magnitude,
see ``logstream.transforms.parsing``), ``s``, ``ms``,
``us``, ``ns``, ``s+ns`` or ``clf`` (an access log's ``time_local``); ``response_time`` is ``s``
(default), ``ms``, ``us`` or ``ns``. Levels are normalised (``logstream.transforms.parsing``);
``level_scale``
says how a numeric level reads (``pino``: 10..60, ``otel``: severity numbers 1..24).
"""

from __future__ import annotations

from dataclasses import dataclass

from logstream.errors import ConfigError

#: The event columns a JSON format can feed.
JSON_COLUMNS = (
    "timestamp", "level", "service", "message", "ip_address", "user_id", "request_id",
    "response_time", "status_code", "error_code", "http_method", "path", "protocol",
    "bytes_sent", "referrer", "user_agent", "vhost", "forwarded_for", "request",
)  # fmt: skip
TIMESTAMP_UNITS = ("auto", "s", "ms", "us", "ns", "s+ns", "clf")
DURATION_UNITS = ("s", "ms", "us", "ns")
LEVEL_SCALES = ("pino", "otel")


@dataclass(frozen=True)
class JsonFormat:
    """One JSON field mapping."""

    name: str
    fields: dict[str, tuple[str, ...]]  # column -> paths
    detect: tuple[str, ...] = ()
    timestamp_unit: str = "auto"
    response_time_unit: str = "s"
    level_scale: str = "pino"
    default_level: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fields) - set(JSON_COLUMNS))
        if unknown:
            raise ConfigError(
                f"JSON format {self.name!r} maps unknown column(s) {', '.join(unknown)}; "
                f"columns: {', '.join(JSON_COLUMNS)}"
            )
        for column, paths in self.fields.items():
            if isinstance(paths, str) or not all(isinstance(p, str) and p for p in paths):
                raise ConfigError(
                    f"JSON format {self.name!r}: {column} must be a list of JSON paths, "
                    f"got {paths!r}"
                )
        checks = (
            ("timestamp_unit", self.timestamp_unit, TIMESTAMP_UNITS),
            ("response_time_unit", self.response_time_unit, DURATION_UNITS),
            ("level_scale", self.level_scale, LEVEL_SCALES),
        )
        for setting, value, allowed in checks:
            if value not in allowed:
                raise ConfigError(
                    f"JSON format {self.name!r}: {setting}={value!r} must be one of "
                    f"{', '.join(allowed)}"
                )
        if "timestamp" not in self.fields:
            raise ConfigError(f"JSON format {self.name!r} must map timestamp to JSON path(s)")

    @classmethod
    def from_setting(cls, name: str, value: object) -> JsonFormat:
        """A user's format from the ``json_formats`` setting: ``{column: [paths] | path, ...,
        "detect": [...], "timestamp_unit": ..., "response_time_unit": ..., ...}``."""
        if not isinstance(value, dict):
            raise ConfigError(
                f"json_formats.{name} must be a mapping of column: [JSON paths], got {value!r}"
            )
        options = {
            key: value[key]
            for key in ("timestamp_unit", "response_time_unit", "level_scale", "default_level")
            if key in value
        }
        detect = value.get("detect", ())
        fields = {
            column: (paths,) if isinstance(paths, str) else tuple(paths)
            for column, paths in value.items()
            if column not in options and column != "detect"
        }
        return cls(name, fields, tuple([detect] if isinstance(detect, str) else detect), **options)

    def spec(self) -> dict:
        """What the Java tokenizer needs of this format."""
        return {
            "name": self.name,
            "fields": {column: list(paths) for column, paths in self.fields.items()},
            "detect": list(self.detect),
            "timestamp_unit": self.timestamp_unit,
            "response_time_unit": self.response_time_unit,
            "level_scale": self.level_scale,
            "default_level": self.default_level,
        }


def _preset(name: str, detect: tuple[str, ...], **fields: object) -> JsonFormat:
    options = {
        key: fields.pop(key)
        for key in ("timestamp_unit", "response_time_unit", "level_scale", "default_level")
        if key in fields
    }
    paths = {column: tuple(value) for column, value in fields.items()}  # type: ignore[arg-type]
    return JsonFormat(name, paths, detect, **options)  # type: ignore[arg-type]


#: Built-in JSON formats, in the order ``auto`` looks for their ``detect`` paths. logstream's own
#: comes first: shippers add ``@timestamp`` or ``ts`` to records that keep their ``timestamp``.
PRESETS: tuple[JsonFormat, ...] = (
    _preset(
        "logstream",
        ("timestamp",),
        timestamp=("timestamp",),
        level=("level",),
        service=("service.name", "service", "app", "application"),
        message=("message", "msg"),
        ip_address=("ip_address",),
        user_id=("user_id",),
        request_id=("request_id",),
        response_time=("response_time",),
        status_code=("status_code",),
        error_code=("error_code",),
        http_method=("http_method",),
        path=("path",),
        protocol=("protocol",),
        bytes_sent=("bytes_sent",),
        referrer=("referrer",),
        user_agent=("user_agent",),
        vhost=("vhost",),
        forwarded_for=("forwarded_for",),
    ),
    _preset(
        "ecs",
        ("@timestamp",),
        timestamp=("@timestamp",),
        level=("log.level", "level"),
        service=("service.name", "event.dataset", "fields.service"),
        message=("message",),
        ip_address=("client.ip", "source.ip", "client.address", "source.address"),
        user_id=("user.id", "user.name"),
        request_id=("http.request.id", "trace.id", "transaction.id"),
        response_time=("event.duration",),
        status_code=("http.response.status_code",),
        error_code=("error.code", "error.type"),
        http_method=("http.request.method",),
        path=("url.original", "url.path"),
        protocol=("http.version",),
        bytes_sent=("http.response.body.bytes", "http.response.bytes"),
        referrer=("http.request.referrer",),
        user_agent=("user_agent.original",),
        vhost=("url.domain", "host.name"),
        response_time_unit="ns",
    ),
    _preset(
        "otel",
        ("timeUnixNano",),
        timestamp=("timeUnixNano", "observedTimeUnixNano"),
        level=("severityText", "severityNumber"),
        service=("resource.attributes.service.name", "attributes.service.name", "service.name"),
        message=("body.stringValue", "body"),
        ip_address=("attributes.client.address", "attributes.net.peer.ip"),
        user_id=("attributes.enduser.id", "attributes.user.id"),
        request_id=("traceId",),
        status_code=("attributes.http.response.status_code", "attributes.http.status_code"),
        http_method=("attributes.http.request.method", "attributes.http.method"),
        path=("attributes.url.path", "attributes.http.target", "attributes.url.full"),
        error_code=("attributes.exception.type", "attributes.error.type"),
        timestamp_unit="ns",
        level_scale="otel",
    ),
    _preset(
        "log4j2",
        ("instant.epochSecond",),
        timestamp=("instant.epochSecond+instant.nanoOfSecond",),
        level=("level",),
        service=("service", "loggerName"),
        message=("message",),
        error_code=("thrown.name",),
        timestamp_unit="s+ns",
    ),
    _preset(
        "log4j2_millis",
        ("timeMillis",),
        timestamp=("timeMillis",),
        level=("level",),
        service=("service", "loggerName"),
        message=("message",),
        error_code=("thrown.name",),
        timestamp_unit="ms",
    ),
    _preset(
        "serilog",
        ("@t",),
        timestamp=("@t",),
        level=("@l",),
        service=("Application", "ApplicationName", "Service", "service", "SourceContext"),
        message=("@m", "@mt"),
        request_id=("RequestId", "@tr"),
        status_code=("StatusCode",),
        http_method=("RequestMethod",),
        path=("RequestPath",),
        response_time=("Elapsed",),
        error_code=("@x",),
        response_time_unit="ms",
        default_level="INFO",
    ),
    _preset(
        "loguru",
        ("record.time.timestamp",),
        timestamp=("record.time.timestamp",),
        level=("record.level.name",),
        service=("record.extra.service", "record.name"),
        message=("record.message", "text"),
        timestamp_unit="s",
    ),
    _preset(
        "traefik_json",
        ("DownstreamStatus",),
        timestamp=("StartUTC", "time", "StartLocal"),
        level=("level",),
        service=("ServiceName", "RouterName"),
        message=("msg",),
        ip_address=("ClientHost",),
        user_id=("ClientUsername",),
        request_id=("request_X-Request-Id",),
        response_time=("Duration",),
        status_code=("DownstreamStatus",),
        http_method=("RequestMethod",),
        path=("RequestPath",),
        protocol=("RequestProtocol",),
        bytes_sent=("DownstreamContentSize",),
        referrer=("request_Referer",),
        user_agent=("request_User-Agent",),
        vhost=("RequestHost",),
        forwarded_for=("request_X-Forwarded-For",),
        response_time_unit="ns",
    ),
    *[
        _preset(
            name,
            (time_path,),
            timestamp=(time_path,),
            service=("service", "server_name"),
            ip_address=("remote_addr",),
            user_id=("remote_user",),
            request_id=("request_id",),
            response_time=("request_time",),
            status_code=("status",),
            http_method=("request_method",),
            path=("request_uri", "uri"),
            bytes_sent=("body_bytes_sent", "bytes_sent"),
            referrer=("http_referrer", "http_referer"),
            user_agent=("http_user_agent",),
            vhost=("host", "http_host"),
            forwarded_for=("http_x_forwarded_for",),
            request=("request",),
            timestamp_unit=unit,
        )
        # nginx's JSON access logs (log_format ... escape=json), by the time variable they log
        for name, time_path, unit in (
            ("nginx_json", "time_local", "clf"),
            ("nginx_json_iso", "time_iso8601", "auto"),
        )
    ],
    _preset(
        "caddy",
        ("ts", "request.uri"),
        timestamp=("ts",),
        level=("level",),
        service=("request.host", "logger"),
        message=("msg",),
        ip_address=("request.client_ip", "request.remote_ip"),
        user_id=("user_id",),
        response_time=("duration",),
        status_code=("status",),
        http_method=("request.method",),
        path=("request.uri",),
        protocol=("request.proto",),
        bytes_sent=("size",),
        referrer=("request.headers.Referer",),
        user_agent=("request.headers.User-Agent",),
        vhost=("request.host",),
        forwarded_for=("request.headers.X-Forwarded-For",),
    ),
    _preset(
        "zap",
        ("ts",),
        timestamp=("ts",),
        level=("level",),
        service=("service.name", "service", "logger"),
        message=("msg",),
        request_id=("request_id", "requestID"),
        error_code=("error",),
    ),
    _preset(
        "pino",
        ("time", "pid", "hostname"),
        timestamp=("time",),
        level=("level",),
        service=("service.name", "service", "name"),
        message=("msg",),
        ip_address=("req.remoteAddress",),
        request_id=("req.id", "reqId"),
        response_time=("responseTime",),
        status_code=("res.statusCode",),
        http_method=("req.method",),
        path=("req.url",),
        user_agent=("req.headers.user-agent",),
        error_code=("err.type",),
        response_time_unit="ms",
    ),
    _preset(
        "zerolog",
        ("time",),
        timestamp=("time",),
        level=("level",),
        service=("service.name", "service", "app", "component"),
        message=("message", "msg"),
        request_id=("request_id", "req_id"),
        error_code=("error",),
    ),
)
#: Names that are another preset's (winston writes logstream's field names; bunyan is pino's;
#: logrus is zerolog's).
ALIASES = {"winston": "logstream", "bunyan": "pino", "logrus": "zerolog"}
