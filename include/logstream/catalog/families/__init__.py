"""The metric families in catalogue order, one module each, and their configured form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from logstream.catalog.families.action_metrics import ACTION_METRICS
from logstream.catalog.families.error_rate import ERROR_RATE
from logstream.catalog.families.ip_patterns import IP_PATTERNS
from logstream.catalog.families.ip_requests import IP_REQUESTS
from logstream.catalog.families.processing_latency import PROCESSING_LATENCY
from logstream.catalog.families.response_time import RESPONSE_TIME
from logstream.catalog.families.service_popularity import SERVICE_POPULARITY
from logstream.catalog.families.sla import SLA
from logstream.catalog.families.system_health import SYSTEM_HEALTH
from logstream.catalog.families.user_activity import USER_ACTIVITY
from logstream.catalog.families.user_event_activity import USER_EVENT_ACTIVITY
from logstream.catalog.families.user_event_counts import USER_EVENT_COUNTS
from logstream.catalog.model import Family
from logstream.errors import ConfigError
from logstream.timeutil import interval_ms

FAMILIES: tuple[Family, ...] = (
    RESPONSE_TIME,
    ERROR_RATE,
    IP_PATTERNS,
    SLA,
    USER_ACTIVITY,
    SERVICE_POPULARITY,
    SYSTEM_HEALTH,
    PROCESSING_LATENCY,
    IP_REQUESTS,
    USER_EVENT_ACTIVITY,
    ACTION_METRICS,
    USER_EVENT_COUNTS,
)

FAMILY_BY_NAME: dict[str, Family] = {family.name: family for family in FAMILIES}


def configured_families(overrides: Mapping[str, Mapping[str, str]] | None = None) -> list[Family]:
    """The catalogue with per-family ``window``/``slide``/``delay`` overrides from settings.

    ConfigError names the setting when a family, a key or an interval is wrong: windows and
    slides must be positive, delays may be zero.
    """
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(FAMILY_BY_NAME))
    if unknown:
        raise ConfigError(
            f"windows: unknown metric famil(ies) {', '.join(unknown)}; "
            f"known: {', '.join(FAMILY_BY_NAME)}"
        )
    families = []
    for family in FAMILIES:
        change = overrides.get(family.name, {})
        if not isinstance(change, Mapping):
            raise ConfigError(
                f"windows.{family.name} must be a mapping such as "
                '{"window": "2 minutes", "delay": "5 minutes"}'
            )
        change = dict(change)
        bad = sorted(set(change) - {"window", "slide", "delay"})
        if bad:
            raise ConfigError(
                f"windows.{family.name}: {', '.join(bad)} cannot be set; "
                "only window, slide and delay can"
            )
        for key, value in change.items():
            if not value:
                continue
            try:
                length = interval_ms(str(value))
            except ValueError as error:
                raise ConfigError(f"windows.{family.name}.{key}: {error}") from None
            if length <= 0 and key != "delay":
                raise ConfigError(f"windows.{family.name}.{key}={value!r} must be longer than zero")
        families.append(replace(family, **change))
    return families
