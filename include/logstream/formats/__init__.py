"""Which formats a log record may be in, by name, and the spec the Java tokenizer reads them by.

A *format expression* (the ``parse_format`` setting, ``logstream parse --format``, the values of
``format_by_topic`` and ``format_by_key``) is a comma-separated list of names:

* a built-in access-log format (:data:`logstream.formats.access.PRESET_FORMATS`, plus
  ``combined_trailing``) or JSON mapping (:data:`logstream.formats.json.PRESETS`; ``winston``,
  ``bunyan`` and ``logrus`` name the presets that read them);
* one of the user's own, from the ``access_formats`` setting (name: the nginx ``log_format`` or
  Apache ``LogFormat`` string) or the ``json_formats`` setting (name: a field mapping);
* a group: ``auto`` (the ``auto_formats`` setting, by default the user's formats then every
  preset), ``access`` and ``json`` (every format of that kind), ``apache`` (``apache_common``,
  ``combined``, ``apache_vhost_combined``, ``apache_combinedio``) and ``nginx`` (``combined``,
  ``nginx_request_time``, ``nginx_main``, ``nginx_timed``, ``ingress_nginx``).

Per record, the formats are tried in order: JSON mappings on a JSON object (the first whose
``detect`` paths are all present, else the first listed), access-log formats on anything else,
cheapest first. A record's Kafka key in ``format_by_key``, else its topic in ``format_by_topic``,
picks its list; otherwise the configured format applies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from logstream.errors import ConfigError
from logstream.formats import access, json_fields
from logstream.formats.access import AccessFormat, compile_format
from logstream.formats.json_fields import JsonFormat

GROUPS = {
    "apache": ("apache_common", "combined", "apache_vhost_combined", "apache_combinedio"),
    "nginx": ("combined", "nginx_request_time", "nginx_main", "nginx_timed", "ingress_nginx"),
}


@dataclass(frozen=True)
class Catalog:
    """Every format a setup knows: its own, then the presets."""

    access: dict[str, AccessFormat]
    json: dict[str, JsonFormat]
    auto: tuple[str, ...]

    def expand(self, expression: str, setting: str = "parse_format") -> list[str]:
        """The format names an expression stands for, in order, each once."""
        names: list[str] = []
        for item in (part.strip() for part in str(expression).split(",")):
            if not item:
                continue
            if item == "auto":
                found: Iterable[str] = self.auto
            elif item == "access":
                found = self.access
            elif item == "json":
                found = self.json
            elif item in GROUPS:
                found = GROUPS[item]
            elif item in json_fields.ALIASES:
                found = (json_fields.ALIASES[item],)
            elif item in self.access or item in self.json:
                found = (item,)
            else:
                known = ["auto", "access", "json", *GROUPS, *self.access, *self.json]
                raise ConfigError(
                    f"{setting}: unknown log format {item!r}; known formats and groups: "
                    f"{', '.join(known)} (add your own with the access_formats or json_formats "
                    "setting)"
                )
            names.extend(name for name in found if name not in names)
        if not names:
            raise ConfigError(f"{setting} names no log format; use auto or a format name")
        return names


def catalog(
    access_formats: Mapping[str, str] | None = None,
    json_mappings: Mapping[str, object] | None = None,
    auto_formats: str = "",
) -> Catalog:
    """The formats of a setup; ConfigError naming the setting if one of them is wrong."""
    own_access: dict[str, AccessFormat] = {}
    for name, text in (access_formats or {}).items():
        if not isinstance(text, str):
            raise ConfigError(
                f"access_formats.{name} must be an nginx log_format or Apache LogFormat string"
            )
        try:
            own_access[name] = compile_format(name, text)
        except ConfigError as error:
            raise ConfigError(f"access_formats.{name}: {error}") from None
    own_json = {
        name: JsonFormat.from_setting(name, value) for name, value in (json_mappings or {}).items()
    }
    presets_access = access.presets()
    presets_json = {preset.name: preset for preset in json_fields.PRESETS}
    clashes = sorted((set(own_access) | set(own_json)) & _reserved(presets_access, presets_json))
    if clashes:
        raise ConfigError(
            f"access_formats/json_formats: {', '.join(clashes)} is the name of a built-in format "
            "or group; give yours another name"
        )
    known = Catalog(
        {**own_access, **presets_access},
        {**own_json, **presets_json},
        (*own_access, *own_json, *presets_access, *presets_json),
    )
    if auto_formats:
        auto = [name for name in known.expand(auto_formats, "auto_formats") if name != "auto"]
        known = Catalog(known.access, known.json, tuple(auto))
    return known


def _reserved(*kinds: Mapping[str, object]) -> set[str]:
    names = {"auto", "access", "json", *GROUPS, *json_fields.ALIASES}
    for kind in kinds:
        names |= set(kind)
    return names


def parse_spec(
    known: Catalog,
    format_expression: str,
    *,
    max_record_bytes: int,
    default_service: str,
    format_by_topic: Mapping[str, str],
    format_by_key: Mapping[str, str],
    service_by_topic: Mapping[str, str],
    trusted_proxies: Iterable[str],
) -> bytes:
    """The JSON document ``dev.logstream.spark.LogTokens`` reads its options from."""
    routes = {
        "candidates": known.expand(format_expression),
        "by_topic": {
            topic: known.expand(value, f"format_by_topic.{topic}")
            for topic, value in format_by_topic.items()
        },
        "by_key": {
            key: known.expand(value, f"format_by_key.{key}") for key, value in format_by_key.items()
        },
    }
    used = set(routes["candidates"])
    for table in ("by_topic", "by_key"):
        for names in routes[table].values():
            used.update(names)
    spec = {
        **routes,
        "access": [found.spec() for name, found in known.access.items() if name in used],
        "json": [found.spec() for name, found in known.json.items() if name in used],
        "max_record_bytes": max_record_bytes,
        "default_service": default_service,
        "service_by_topic": dict(service_by_topic),
        "trusted_proxies": list(trusted_proxies),
    }
    return json.dumps(spec, sort_keys=True).encode()


def trusted_proxy_list(text: str) -> list[str]:
    """The ``trusted_proxies`` setting (comma-separated IPs or CIDR blocks), checked and written
    as ``address/prefix-length`` for the Java side."""
    import ipaddress

    proxies = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        hint = "(e.g. 10.0.0.0/8, 2001:db8::/32)"
        if "%" in item:
            raise ConfigError(f"trusted_proxies: {item!r} has a zone id; give the block {hint}")
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"trusted_proxies: {item!r} is not an IP address or CIDR block {hint}"
            ) from None
        if network.version == 6 and network.network_address.ipv4_mapped is not None:
            raise ConfigError(
                f"trusted_proxies: {item!r} is an IPv4-mapped IPv6 block; give the IPv4 block"
            )
        proxies.append(str(network))
    return proxies
