"""What each table suite checks beyond its schema, and the named selections of suites.

One :class:`TableCheck` per sink table: the event tables' checks are written here; a metric
table's come from its :class:`~logstream.catalog.Family` declaration (keys, the bounds and value
set of each column, orderings between columns), for the streamed table and its reconciled twin.
"""

from __future__ import annotations

from dataclasses import dataclass

from logstream import catalog, schemas
from logstream.catalog import anomalies
from logstream.config import Settings

#: Name of the cross-table suite (reconciled request counts vs bronze events).
REQUEST_COUNTS_CHECK = "cross/request_counts"

#: Anomaly kinds written by logstream.catalog.anomalies and the streaming job's late-data rule.
ANOMALY_KINDS = anomalies.KINDS
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class TableCheck:
    """What one suite checks beyond the schema: keys, ranges, sets, freshness, the day bounds."""

    name: str  # the table under data_root ("events", "reconciled/sla") = the suite name
    date_column: str  # partition column holding the day
    keys: tuple[str, ...]  # identify a row: never null, unique together
    not_null: tuple[str, ...] = ()
    required: bool = False  # the day must have rows
    fresh_column: str | None = None  # max(column) >= $fresh_since
    in_day_column: str | None = None  # $day_start <= column < $day_end
    ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    value_sets: tuple[tuple[str, tuple], ...] = ()
    family: catalog.Family | None = None  # a metric table: its columns' bounds and orderings


def _event_checks() -> list[TableCheck]:
    kafka = ("kafka_topic", "kafka_partition", "kafka_offset")
    return [
        TableCheck(
            "events",
            "event_date",
            ("event_id",),
            not_null=("event_time", "service", *kafka, "processing_time"),
            required=True,
            fresh_column="processing_time",
            in_day_column="event_time",
            ranges=(
                ("status_code", 100, 599),
                ("response_time", 0, None),
                ("bytes_sent", 0, None),
                ("event_hour", 0, 23),
            ),
        ),
        TableCheck(
            "user_events",
            "event_date",
            ("event_id",),
            not_null=("event_time", "user_id", "action", *kafka, "processing_time"),
            in_day_column="event_time",
            ranges=(("event_hour", 0, 23),),
        ),
        TableCheck(
            "late_events",
            "event_date",
            ("event_id",),
            not_null=("event_time", "late_for"),
            in_day_column="event_time",
        ),
        TableCheck(
            "late_user_events",
            "event_date",
            ("event_id",),
            not_null=("event_time", "late_for"),
            in_day_column="event_time",
        ),
        TableCheck(
            "quarantine",
            "quarantine_date",
            kafka,
            not_null=("reason", "processing_time"),
            in_day_column="kafka_timestamp",
            ranges=(("raw_length", 0, None),),
            value_sets=(("reason", tuple(sorted(schemas.REASONS))),),
        ),
        TableCheck(
            "anomalies",
            "window_date",
            ("anomaly_id",),
            not_null=("kind", "window_start", "window_end", "severity"),
            in_day_column="window_start",
            value_sets=(("kind", ANOMALY_KINDS), ("severity", SEVERITIES)),
        ),
    ]


def _metric_check(family: catalog.Family, reconciled: bool) -> TableCheck:
    # tables that have rows whenever events do: a streamed one must also be fresh
    always_there = family.source == "events" and not family.key_filter
    return TableCheck(
        f"reconciled/{family.name}" if reconciled else family.name,
        "window_date",
        ("window_start", *family.keys),
        not_null=("window_end",),
        required=always_there,
        fresh_column="window_end" if always_there and not reconciled else None,
        in_day_column="window_start",
        family=family,
    )


def table_checks(settings: Settings) -> dict[str, TableCheck]:
    """Every table suite by name: the event tables, each metric table and its reconciled twin."""
    families = catalog.configured_families(settings.windows)
    checks = _event_checks()
    checks += [_metric_check(family, reconciled=False) for family in families]
    checks += [_metric_check(family, reconciled=True) for family in families]
    return {check.name: check for check in checks}


def suite_groups(settings: Settings) -> dict[str, list[str]]:
    """Named selections: ``streamed`` (what the streaming job writes), ``reconciled`` (the nightly
    replay and the cross-table check) and ``all``."""
    names = list(table_checks(settings))
    streamed = [name for name in names if not name.startswith("reconciled/")]
    reconciled = [name for name in names if name.startswith("reconciled/")]
    reconciled.append(REQUEST_COUNTS_CHECK)
    return {"streamed": streamed, "reconciled": reconciled, "all": streamed + reconciled}
