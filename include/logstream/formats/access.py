"""Access-log formats as data: an nginx ``log_format`` or Apache ``LogFormat`` string compiled
into the Java tokenizer's pattern (SPEC §3).

A user pastes the format from the server's configuration, either the bare string or the whole
directive (``log_format main '$remote_addr - ...';`` or ``LogFormat "%h %l ..." combined``).
:func:`compile_format` turns it into an anchored Java regular expression with one capture group
per variable, and names what each group becomes (:data:`COLUMNS`, or ``extra:<name>``).

The pattern keeps the tokenizer's non-backtracking style: every variable matches with a
possessive quantifier over the characters that cannot end it (the first character of the
literal text that follows it), a variable between double quotes is a quoted body with ``\\"``
escapes, a variable between ``[`` and ``]`` runs to the ``]``. So a line is matched in one pass
whatever its length, and a line that does not fit fails fast. Two variables with no literal text
between them cannot be told apart and are refused.

Which column a variable feeds:

* client (``$remote_addr``, ``%h``, ``%a``): ``ip_address`` (a comma-separated X-Forwarded-For
  list is accepted here too; see the trusted-proxy rule in ``logstream.formats``);
* ``$http_x_forwarded_for`` / ``%{X-Forwarded-For}i``: ``forwarded_for``;
* ``$host``, ``$server_name``, ``$http_host``, ``%v``, ``%V``: ``vhost``;
* ``$request`` / ``%r``: the request line, split into method, path and protocol;
* ``$request_time`` / ``%T`` (seconds), ``%D`` (microseconds), ``%{ms}T``: ``response_time`` in
  seconds; ``$status``/``%>s``, ``$body_bytes_sent``/``%b``/``%O``, referrer, user agent, user,
  ``$request_id``, ``$time_local``/``%t`` (and ``$time_iso8601``, ``$msec``) as named;
* any other variable: ``extra[<variable name>]`` (Apache directives by their meaning, e.g.
  ``%I`` -> ``bytes_received``; ``%{Name}i`` -> ``http_name``). An nginx name close to one of
  nginx's own variables (``$remote_adr``) and an Apache directive that does not exist are
  configuration errors.

A second variable feeding a column that is already fed goes to ``extra`` instead.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

from logstream.errors import ConfigError

#: What a capture group can become (besides ``extra:<name>``).
COLUMNS = frozenset(
    {
        "client", "user_id", "time_clf", "time_iso", "time_epoch_s", "request", "http_method",
        "path", "protocol", "status", "bytes", "referrer", "user_agent", "response_time_s",
        "response_time_ms", "response_time_us", "vhost", "forwarded_for", "request_id",
    }
)  # fmt: skip

# -- the variables ---------------------------------------------------------------------------
_NGINX_COLUMNS = {
    "remote_addr": "client",
    "realip_remote_addr": "client",
    "remote_user": "user_id",
    "time_local": "time_clf",
    "time_iso8601": "time_iso",
    "msec": "time_epoch_s",
    "request": "request",
    "request_method": "http_method",
    "request_uri": "path",
    "uri": "path",
    "server_protocol": "protocol",
    "status": "status",
    "body_bytes_sent": "bytes",
    "bytes_sent": "bytes",
    "http_referer": "referrer",
    "http_user_agent": "user_agent",
    "request_time": "response_time_s",
    "host": "vhost",
    "server_name": "vhost",
    "http_host": "vhost",
    "http_x_forwarded_for": "forwarded_for",
    "request_id": "request_id",
    "req_id": "request_id",
    # Traefik's CLF duration, "<n>ms" (logstream's name for it in the traefik preset)
    "traefik_duration_ms": "response_time_ms",
}
_APACHE_DIRECTIVES = {
    # directive letter -> (column or extra name)
    "h": "client",
    "a": "client",
    "l": "extra:ident",
    "u": "user_id",
    "t": "time_clf",
    "r": "request",
    "s": "status",
    "b": "bytes",
    "B": "bytes",
    "O": "bytes",
    "I": "extra:bytes_received",
    "S": "extra:bytes_transferred",
    "D": "response_time_us",
    "T": "response_time_s",
    "v": "vhost",
    "V": "vhost",
    "p": "extra:port",
    "m": "http_method",
    "U": "path",
    "q": "extra:query",
    "H": "protocol",
    "A": "extra:local_address",
    "P": "extra:pid",
    "k": "extra:keepalive_requests",
    "X": "extra:connection_status",
    "f": "extra:filename",
    "L": "extra:log_id",
    "R": "extra:handler",
}
#: Extra names of directives whose column another directive of the format already feeds.
_APACHE_SECOND = {
    "D": "duration_us",
    "T": "duration_s",
    "O": "bytes_out",
    "b": "bytes_body",
    "B": "bytes_body",
    "a": "remote_ip",
    "h": "remote_host",
    "v": "canonical_server_name",
    "V": "server_name",
}
_APACHE_HEADERS = {
    "referer": "referrer",
    "user-agent": "user_agent",
    "x-forwarded-for": "forwarded_for",
    "host": "vhost",
    "x-request-id": "request_id",
}
#: Variables whose values are integers, or decimals: typed so that similar formats stay apart.
_INTEGER = {"status", "bytes", "response_time_us", "extra:bytes_received", "extra:port"}
_INTEGER_NGINX = {"request_length", "bytes_sent", "body_bytes_sent", "connection",
                  "connection_requests", "pid", "server_port", "remote_port"}  # fmt: skip
_INTEGER_APACHE = set("bBDIOSpPk")
_DECIMAL = {"response_time_s", "response_time_ms", "time_epoch_s"}
#: Variables that only ever follow another one and belong to it (the query after the path).
_NGINX_SUFFIXES = {"is_args", "args", "query_string"}
#: Variables that may hold a comma-separated list (proxies, upstreams).
_LIST = {"client", "forwarded_for"}
_LIST_NGINX = {"upstream_addr", "upstream_status", "upstream_response_length"}
#: nginx's upstream timings: "-", or seconds, several separated by ", " (retries) or " : "
#: (internal redirects).
_TIMES_NGINX = {"upstream_response_time", "upstream_connect_time", "upstream_header_time"}
_SECONDS = r"(?:-|[0-9]++\.[0-9]++)"
#: nginx prints seconds with millisecond resolution, always with a point ("0.005").
_DOTTED_NGINX = {"request_time", "msec"}

#: nginx's own variables (core, log, upstream, realip, ssl and proxy modules) and the prefixes of
#: its variable families. A name that is none of these but close to one is taken for a typo; any
#: other name is the user's own (``map``/``set``) and goes to ``extra``.
_NGINX_KNOWN = {
    "arg", "args", "binary_remote_addr", "body_bytes_sent", "bytes_sent", "connection",
    "connection_requests", "connection_time", "content_length", "content_type", "document_root",
    "document_uri", "host", "hostname", "https", "is_args", "limit_rate", "msec",
    "nginx_version", "pid", "pipe", "proxy_add_x_forwarded_for", "proxy_host", "proxy_port",
    "proxy_protocol_addr", "proxy_protocol_port", "query_string", "realip_remote_addr",
    "realip_remote_port", "realpath_root", "remote_addr", "remote_port", "remote_user",
    "request", "request_body", "request_completion", "request_filename", "request_id",
    "request_length", "request_method", "request_time", "request_uri", "scheme",
    "server_addr", "server_name", "server_port", "server_protocol", "status", "time_iso8601",
    "time_local", "uri", "upstream_addr", "upstream_bytes_received", "upstream_bytes_sent",
    "upstream_cache_status", "upstream_connect_time", "upstream_header_time",
    "upstream_queue_time", "upstream_response_length", "upstream_response_time",
    "upstream_status", "gzip_ratio", "http2", "http3",
}  # fmt: skip
_NGINX_PREFIXES = ("http_", "sent_http_", "cookie_", "arg_", "upstream_http_",
                   "upstream_cookie_", "ssl_", "geoip_", "jwt_", "tcpinfo_")  # fmt: skip


def _check_nginx_variable(name: str) -> None:
    """ConfigError for a name that looks like a misspelt nginx variable (``$remote_adr``)."""
    if name in _NGINX_KNOWN or name.startswith(_NGINX_PREFIXES) or name in _NGINX_COLUMNS:
        return
    close = difflib.get_close_matches(name, sorted(_NGINX_KNOWN), n=1, cutoff=0.92)
    if close:
        raise ConfigError(
            f"unknown nginx variable ${name}; did you mean ${close[0]}? "
            f"(https://nginx.org/en/docs/varindex.html; a variable of your own: write ${{{name}}})"
        )


def _column_of(target: str) -> str:
    """The output column a target feeds: every time variable feeds the event time, every
    duration the response time."""
    if target.startswith("time_"):
        return "event_time"
    if target.startswith("response_time_"):
        return "response_time"
    return target


_QUOTED_BODY = r'[^"\\]*+(?:\\.[^"\\]*+)*+'


@dataclass(frozen=True)
class AccessFormat:
    """One compiled access-log format."""

    name: str
    source: str  # the format string as given
    syntax: str  # "nginx" | "apache"
    pattern: str  # an anchored Java (and Python 3.11) regular expression
    targets: tuple[str, ...]  # what capture group i+1 becomes

    @property
    def cost(self) -> int:
        """How expensive a match attempt is: the number of variables."""
        return len(self.targets)

    def spec(self) -> dict:
        """What the Java tokenizer needs of this format."""
        return {"name": self.name, "pattern": self.pattern, "targets": list(self.targets)}


# -- tokenizing the format string ------------------------------------------------------------
_NGINX_VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")
_APACHE_DIRECTIVE = re.compile(r"%(?:[!0-9,]*)([<>]?)(?:\{([^}]*)\})?([a-zA-Z%])")
_NGINX_DIRECTIVE = re.compile(r"^\s*log_format\s+\S+\s+(?:escape=\S+\s+)?(.*?);?\s*$", re.S)
_APACHE_LOGFORMAT = re.compile(r'^\s*LogFormat\s+"((?:[^"\\]|\\.)*)"(?:\s+\S+)?\s*$', re.S)


def syntax_of(text: str) -> str:
    """``nginx`` or ``apache``: which server's syntax a format string is written in."""
    stripped = text.strip()
    if stripped.startswith("log_format"):
        return "nginx"
    if stripped.startswith("LogFormat"):
        return "apache"
    nginx = bool(_NGINX_VARIABLE.search(text))
    apache = bool(re.search(r"%[<>]?(?:\{[^}]*\})?[a-zA-Z]", text))
    if nginx == apache:
        raise ConfigError(
            f"cannot tell whether access-log format {text[:80]!r} is an nginx log_format "
            "($variables) or an Apache LogFormat (%directives); paste the whole directive, "
            "e.g. log_format main '...'; or LogFormat \"...\" name"
        )
    return "nginx" if nginx else "apache"


def _nginx_body(text: str) -> str:
    """The format string of a pasted ``log_format`` directive (its quoted pieces joined)."""
    directive = _NGINX_DIRECTIVE.match(text)
    if not directive:
        return text
    pieces = re.findall(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", directive.group(1))
    if not pieces:
        return directive.group(1)
    return "".join(single or double for single, double in pieces)


def _apache_body(text: str) -> str:
    """The format string of a pasted ``LogFormat`` directive, its C-style escapes undone."""
    directive = _APACHE_LOGFORMAT.match(text)
    body = directive.group(1) if directive else text
    if directive or '\\"' in body:
        body = re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n"}.get(m.group(1), m.group(1)), body)
    return body


def _nginx_parts(body: str) -> list[tuple[str, str]]:
    """The format as ("literal", text) and ("var", target) parts."""
    parts: list[tuple[str, str]] = []
    position = 0
    seen: set[str] = set()
    for match in _NGINX_VARIABLE.finditer(body):
        if match.start() > position:
            parts.append(("literal", body[position : match.start()]))
        name = match.group(1) or match.group(2)
        if match.group(2):  # ${name} is the user's own, whatever it looks like
            _check_nginx_variable(name)
        target = _NGINX_COLUMNS.get(name, f"extra:{name}")
        if _column_of(target) in seen or target.startswith("extra:"):
            target = f"extra:{name}"
        seen.add(_column_of(target))
        if name in _NGINX_SUFFIXES and parts and parts[-1][0] == "var":
            position = match.end()  # $uri$is_args$args: the query belongs to the path
            continue
        kind = (
            "dotted"
            if name in _DOTTED_NGINX
            else "host"
            if name == "host"
            else "integer"
            if name in _INTEGER_NGINX
            else "list"
            if name in _LIST_NGINX
            else "times"
            if name in _TIMES_NGINX
            else ""
        )
        parts.append(("var", f"{target}|{kind}"))
        position = match.end()
    if position < len(body):
        parts.append(("literal", body[position:]))
    return parts


def _apache_target(final: str, argument: str | None, letter: str) -> str:
    if argument is not None and letter in "ioeCn":
        header = argument.lower()
        if letter == "i" and header in _APACHE_HEADERS:
            return _APACHE_HEADERS[header]
        prefix = {"i": "http_", "o": "sent_http_", "e": "env_", "C": "cookie_", "n": "note_"}
        return f"extra:{prefix[letter]}{re.sub(r'[^a-z0-9]+', '_', header)}"
    if letter == "t" and argument is not None:
        if argument in ("sec", "%s"):
            return "time_epoch_s"
        if argument == "%d/%b/%Y:%H:%M:%S %z":
            return "time_clf"
        return f"extra:time_{re.sub(r'[^a-z0-9]+', '_', argument.lower()).strip('_') or 't'}"
    if letter == "T" and argument is not None:
        return {"ms": "response_time_ms", "us": "response_time_us", "s": "response_time_s"}.get(
            argument, "response_time_s"
        )
    if letter not in _APACHE_DIRECTIVES:
        raise ConfigError(
            f"Apache LogFormat directive %{letter} is not one logstream knows; "
            "see https://httpd.apache.org/docs/current/mod/mod_log_config.html#formats"
        )
    return _APACHE_DIRECTIVES[letter]


def _apache_parts(body: str) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    position = 0
    seen: set[str] = set()
    for match in _APACHE_DIRECTIVE.finditer(body):
        if match.start() > position:
            parts.append(("literal", body[position : match.start()]))
        final, argument, letter = match.groups()
        position = match.end()
        if letter == "%":
            parts.append(("literal", "%"))
            continue
        if letter == "q" and parts and parts[-1][0] == "var":
            continue  # %U%q: the query string belongs to the path
        target = _apache_target(final, argument, letter)
        if _column_of(target) in seen:
            second = _APACHE_SECOND.get(letter, f"{target.removeprefix('extra:')}_{letter}")
            target = f"extra:{second}"
        seen.add(_column_of(target))
        kind = "integer" if letter in _INTEGER_APACHE else ""
        if target == "time_clf" and argument is None:  # %t writes its own brackets
            parts += [("literal", "["), ("var", f"{target}|"), ("literal", "]")]
        else:
            parts.append(("var", f"{target}|{kind}"))
    if position < len(body):
        parts.append(("literal", body[position:]))
    merged: list[tuple[str, str]] = []
    for kind, text in parts:  # "%%" leaves literal pieces side by side
        if kind == "literal" and merged and merged[-1][0] == "literal":
            merged[-1] = ("literal", merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


# -- compiling ---------------------------------------------------------------------------------
def _variable_regex(target: str, kind: str, before: str, after: str) -> str:
    """The capture group of one variable, given the literal text around it."""
    stop = after[:1]
    if before.endswith('"') and stop == '"':
        return f"({_QUOTED_BODY})"
    if target == "status":
        return "([0-9]{3})"
    if kind == "times":
        return f"({_SECONDS}(?:(?:, | : ){_SECONDS})*+)"
    if kind == "dotted":
        body = r"-|[0-9]++\.[0-9]++"
    elif target in _INTEGER or kind == "integer":
        body = "-|[0-9]++"
    elif target in _DECIMAL:
        body = r"-|[0-9]++(?:\.[0-9]++)?+"
    else:
        body = ""
    if body and (not stop or stop not in "0123456789.-"):
        return f"({body})"
    if not stop:
        return "(.*+)"
    excluded = re.escape(stop) if stop in "]\\^-[" else stop
    if kind == "host" and stop == " ":  # nginx's $host never has a port (unlike $http_host)
        return r"(\[[^\]]*+\]|[^ :\[]*+)"
    if target in _LIST or kind == "list":
        item = f"[^{excluded},]"
        return f"((?:{item}++,(?: )?+)*+[^{excluded}]*+)"
    return f"([^{excluded}]*+)"


def compile_format(name: str, text: str, syntax: str | None = None) -> AccessFormat:
    """Compile an nginx ``log_format`` or Apache ``LogFormat`` string (ConfigError if it can't)."""
    if not text or not text.strip():
        raise ConfigError(f"access-log format {name!r} is empty; paste the server's format string")
    syntax = syntax or syntax_of(text)
    if syntax == "nginx":
        parts = _nginx_parts(_nginx_body(text))
    elif syntax == "apache":
        parts = _apache_parts(_apache_body(text))
    else:
        raise ConfigError(f"access-log format syntax {syntax!r} must be nginx or apache")
    pattern = ["^"]
    targets: list[str] = []
    for index, (kind, value) in enumerate(parts):
        if kind == "literal":
            pattern.append(re.escape(value))
            continue
        previous = parts[index - 1] if index > 0 else ("literal", "")
        following = parts[index + 1] if index + 1 < len(parts) else ("literal", "")
        if previous[0] == "var" or following[0] == "var":
            raise ConfigError(
                f"access-log format {name!r} has two variables with nothing between them "
                f"({text[:120]!r}); logstream needs a separator to tell them apart"
            )
        target, _, variable_kind = value.partition("|")
        pattern.append(_variable_regex(target, variable_kind, previous[1], following[1]))
        targets.append(target)
    if not targets:
        raise ConfigError(f"access-log format {name!r} has no variables: {text[:120]!r}")
    pattern.append("$")
    return AccessFormat(name, text, syntax, "".join(pattern), tuple(targets))


# -- presets -----------------------------------------------------------------------------------
_COMBINED_NGINX = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)
#: Built-in formats, in the order ``auto`` tries them among equals (cheapest first overall).
PRESET_FORMATS: dict[str, tuple[str, str]] = {
    "apache_common": ("apache", '%h %l %u %t "%r" %>s %b'),
    "combined": ("apache", '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"'),
    "nginx_request_time": ("nginx", f"{_COMBINED_NGINX} $request_time"),
    "nginx_main": ("nginx", f'{_COMBINED_NGINX} "$http_x_forwarded_for"'),
    "apache_vhost_combined": (
        "apache",
        '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
    ),
    "apache_combinedio": (
        "apache",
        '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %I %O',
    ),
    "nginx_timed": ("nginx", f"{_COMBINED_NGINX} $request_time $upstream_response_time"),
    "traefik": (
        "nginx",
        f'{_COMBINED_NGINX} $traefik_request_count "$traefik_router_name" '
        '"$traefik_server_url" ${traefik_duration_ms}ms',
    ),
    "host_combined": ("nginx", f"$host {_COMBINED_NGINX}"),
    "ingress_nginx": (
        "nginx",
        f"{_COMBINED_NGINX} $request_length $request_time [$proxy_upstream_name] "
        "[$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length "
        "$upstream_response_time $upstream_status $req_id",
    ),
}
#: Tried after every other access format: combined followed by fields nobody declared.
TRAILING_PRESET = ("combined_trailing", ("nginx", f"{_COMBINED_NGINX} $trailing"))


@functools.cache
def presets() -> dict[str, AccessFormat]:
    """Every built-in access format, compiled once, cheapest first (the trailing catch-all last).
    Callers copy the mapping, never change it."""
    compiled = [
        compile_format(name, text, syntax) for name, (syntax, text) in PRESET_FORMATS.items()
    ]
    ordered = sorted(compiled, key=lambda found: found.cost)  # stable: ties keep declared order
    trailing_name, (syntax, text) = TRAILING_PRESET
    ordered.append(compile_format(trailing_name, text, syntax))
    return {found.name: found for found in ordered}
