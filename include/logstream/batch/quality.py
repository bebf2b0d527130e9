"""Data quality gates (SPEC §7.4): Great Expectations suites for every sink table, run on Spark.

One expectation suite per table, built here in code (the code is the definition; nothing is edited
in a GX project by hand), validated on one day of data:

* **schema**: the day's partition is read with the schema that is ON DISK and compared with the
  declared one (:func:`logstream.storage.tables.table_schema`): the set of column names, each
  column's
  type;
* **keys**: identifying columns are never null and unique together (``event_id``; ``window_start``
  + group keys for metric tables; Kafka coordinates for quarantine; ``anomaly_id``);
* **ranges**: counts >= 0, percentages in 0..100, ``health_score`` in {100, 80, 60, 40},
  p50 <= p95 <= p99 <= max, min <= avg <= max, parts <= totals (one row-consistency query per
  table that names the rules each bad row breaks), known reason codes, kinds and severities,
  timestamps inside the day being checked;
* **freshness**: the newest ``processing_time`` (events) or ``window_end`` (streamed metric
  tables that exist whenever events do) is at least the run-time parameter ``$fresh_since``;
* **cross-table**: reconciled request counts per (service, window) equal the bronze event counts
  per (service, window), as a mismatch query over a comparison frame computed with Spark.

Tables are handed to GX as Spark DataFrames through its Spark data source (one whole-DataFrame
batch per table, filtered to the day by partition): no pandas conversion, so the work stays in
the JVM. The context is ephemeral (the suites live here) with one local Data Docs site under
``<reports_dir>/data_docs``: its index lists the latest run's validations; each run's pages stay
on disk (pruned after :data:`DOCS_KEEP_DAYS`). :func:`run_quality` returns a
:class:`QualityResult` (per-suite verdicts, failed expectations with column and observed value,
the Data Docs paths) that the job writes to ``<reports_dir>/quality/<day>.json``.

``great_expectations`` is imported lazily: the Airflow side (planning a run, the failure alert)
uses this module without paying for it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream import catalog, schemas
from logstream.alerts import Alert, notify, task_failure_alert
from logstream.catalog import anomalies
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.storage.fs import HadoopFS
from logstream.storage.tables import table_path, table_schema
from logstream.timeutil import as_utc

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.expectations import Expectation

log = logging.getLogger(__name__)

#: The Data Docs site name in the GX context.
DOCS_SITE = "logstream"
#: Data Docs pages of runs older than this are deleted when a new run builds the site.
DOCS_KEEP_DAYS = 30
#: How far back the newest row of a fresh table may be (the ``freshness_minutes`` parameter).
DEFAULT_FRESHNESS_MINUTES = 60
#: Relative tolerance for min <= avg <= max: a mean of doubles can exceed the max by rounding.
MEAN_TOLERANCE = 1e-9
#: Unexpected values / rows kept per failed expectation in the result and the alert.
SAMPLE_SIZE = 5

#: Name of the cross-table suite (reconciled request counts vs bronze events).
REQUEST_COUNTS_CHECK = "cross/request_counts"

#: Anomaly kinds written by logstream.catalog.anomalies and the streaming job's late-data rule.
ANOMALY_KINDS = anomalies.KINDS
SEVERITIES = ("info", "warning", "critical")

#: Families whose reconciled table carries a per-(service, window) request count, and its column.
SERVICE_REQUEST_COUNTS = {
    family.name: family.count_column
    for family in catalog.FAMILIES
    if family.counts_service_requests
}


# --------------------------------------------------------------------------------------------
# What each table must satisfy
# --------------------------------------------------------------------------------------------


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


def resolve_suites(settings: Settings, selection: str | Iterable[str] | None) -> list[str]:
    """Suite names from group names and/or suite names (comma-separated or a list), in catalogue
    order; ``None`` or empty means ``all``. Unknown names raise ConfigError listing the known."""
    if isinstance(selection, str):
        selection = [part.strip() for part in selection.split(",")]
    wanted = [name for name in (selection or []) if name] or ["all"]
    groups = suite_groups(settings)
    known = groups["all"]
    chosen: set[str] = set()
    for name in wanted:
        if name in groups:
            chosen.update(groups[name])
        elif name in known:
            chosen.add(name)
        else:
            raise ConfigError(
                f"unknown quality suite {name!r}; use a group ({', '.join(groups)}) "
                f"or suite names: {', '.join(known)}"
            )
    return [name for name in known if name in chosen]


# --------------------------------------------------------------------------------------------
# Run-time parameters
# --------------------------------------------------------------------------------------------


def _spark_local(value: datetime) -> datetime:
    """An aware datetime as PySpark shows timestamps: naive, in the driver's local time zone.

    GX compares collected values (PySpark turns them into local naive datetimes) with the
    parameters, and Spark reads naive literals as local time, so both sides must agree.
    """
    return datetime.fromtimestamp(as_utc(value).timestamp())


def expectation_parameters(
    day: date, overrides: Mapping[str, str] | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The ``$PARAMETER`` values of one run.

    ``day_start``/``day_end`` bound the day (UTC). ``fresh_since`` (override: an ISO-8601 time,
    UTC if no offset) defaults to ``min(now, day_end) - freshness_minutes`` (override: an
    integer, default :data:`DEFAULT_FRESHNESS_MINUTES`): the newest row of a fresh table must be
    at most that old, or, for a finished day, that close to its end.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {"fresh_since", "freshness_minutes"})
    if unknown:
        raise ConfigError(
            f"unknown quality parameter(s) {', '.join(unknown)}; "
            "known: fresh_since (ISO-8601 time), freshness_minutes (integer)"
        )
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    try:
        minutes = int(overrides.get("freshness_minutes", DEFAULT_FRESHNESS_MINUTES))
    except ValueError:
        raise ConfigError(
            f"freshness_minutes={overrides['freshness_minutes']!r} is not a whole number"
        ) from None
    if "fresh_since" in overrides:
        try:
            fresh_since = as_utc(datetime.fromisoformat(str(overrides["fresh_since"])))
        except ValueError:
            raise ConfigError(
                f"fresh_since={overrides['fresh_since']!r} is not an ISO-8601 time; "
                "write e.g. 2026-01-14T23:00:00+00:00"
            ) from None
    else:
        anchor = min(as_utc(now or datetime.now(UTC)), end)
        fresh_since = anchor - timedelta(minutes=minutes)
    return {"day_start": start, "day_end": end, "fresh_since": fresh_since}


# --------------------------------------------------------------------------------------------
# Suites
# --------------------------------------------------------------------------------------------


def _gx():
    import great_expectations as gx

    return gx


def _not_null_and_unique(check: TableCheck) -> list[Expectation]:
    expect = _gx().expectations
    columns = list(dict.fromkeys([*check.keys, *check.not_null]))
    found: list[Expectation] = [expect.ExpectColumnValuesToNotBeNull(column=c) for c in columns]
    if len(check.keys) == 1:
        found.append(expect.ExpectColumnValuesToBeUnique(column=check.keys[0]))
    else:
        found.append(expect.ExpectCompoundColumnsToBeUnique(column_list=list(check.keys)))
    return found


def _select_where(columns: Sequence[str], condition: str) -> str:
    """An UnexpectedRowsExpectation query over the batch; names come from our own schemas."""
    return f"SELECT {', '.join(columns)} FROM {{batch}} WHERE {condition}"  # noqa: S608


def consistency_rules(check: TableCheck, columns: set[str]) -> list[tuple[str, str]]:
    """(name, Spark SQL condition) of every ordering between a table's columns.

    A condition is NULL (not violated) when a value it needs is missing. A mean may exceed its
    maximum by rounding, so mean bounds allow :data:`MEAN_TOLERANCE` relative slack.
    """
    rules = []
    if {"window_start", "window_end"} <= columns:
        rules.append(("window_start < window_end", "window_end > window_start"))
    if check.family is None:
        return rules
    for larger, smaller in check.family.orderings:
        rules.append((f"{smaller} <= {larger}", f"{larger} >= {smaller}"))
    for low, mean, high in check.family.mean_bounds:
        rules.append((f"{low} <= {mean}", f"{mean} >= {low} - {MEAN_TOLERANCE} * abs({low})"))
        rules.append((f"{mean} <= {high}", f"{mean} <= {high} + {MEAN_TOLERANCE} * abs({high})"))
    return rules


def _violations(rules: Sequence[tuple[str, str]]) -> str:
    """A ``violated`` column naming the rules a row breaks."""
    cases = ", ".join(f"CASE WHEN NOT ({condition}) THEN '{name}' END" for name, condition in rules)
    return f"concat_ws('; ', {cases}) AS violated"


def _metric_rules(check: TableCheck) -> list[Expectation]:
    """Each metric column's declared bounds and value set."""
    expect = _gx().expectations
    found: list[Expectation] = []
    for metric in check.family.metrics if check.family else ():
        if metric.bounded:
            bounds = {"min_value": metric.low, "max_value": metric.high}
            found.append(
                expect.ExpectColumnValuesToBeBetween(
                    column=metric.name, **{k: v for k, v in bounds.items() if v is not None}
                )
            )
        if metric.values is not None:
            found.append(
                expect.ExpectColumnValuesToBeInSet(
                    column=metric.name, value_set=list(metric.values)
                )
            )
    return found


def _consistency(check: TableCheck, schema: T.StructType) -> list[Expectation]:
    rules = consistency_rules(check, set(schema.names))
    if not rules:
        return []
    return [
        _gx().expectations.UnexpectedRowsExpectation(
            unexpected_rows_query=_select_where(
                [*check.keys, _violations(rules)],
                " OR ".join(f"NOT ({condition})" for _, condition in rules),
            ),
            description="row consistency: " + "; ".join(name for name, _ in rules),
        )
    ]


def table_expectations(check: TableCheck, schema: T.StructType) -> list[Expectation]:
    """The expectations of one table suite, given the table's declared schema."""
    expect = _gx().expectations
    # the set, not the order: Parquet readers select columns by name
    found: list[Expectation] = [
        expect.ExpectTableColumnsToMatchSet(column_set=schema.names, exact_match=True)
    ]
    found += [
        expect.ExpectColumnValuesToBeOfType(column=f.name, type_=type(f.dataType).__name__)
        for f in schema.fields
    ]
    if check.required:
        found.append(expect.ExpectTableRowCountToBeBetween(min_value=1))
    found += _not_null_and_unique(check)
    for column, low, high in check.ranges:
        found.append(
            expect.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)
        )
    for column, values in check.value_sets:
        if column in schema.names:
            found.append(expect.ExpectColumnValuesToBeInSet(column=column, value_set=list(values)))
    found += _metric_rules(check)
    found += _consistency(check, schema)
    if check.in_day_column:
        found.append(
            expect.ExpectColumnValuesToBeBetween(
                column=check.in_day_column,
                min_value={"$PARAMETER": "day_start"},
                max_value={"$PARAMETER": "day_end"},
                strict_max=True,
                description=f"every {check.in_day_column} lies in the day being checked (UTC)",
            )
        )
    if check.fresh_column:
        found.append(
            expect.ExpectColumnMaxToBeBetween(
                column=check.fresh_column,
                min_value={"$PARAMETER": "fresh_since"},
                description=(
                    f"freshness: the newest {check.fresh_column} is at or after $fresh_since"
                ),
            )
        )
    return found


def request_counts_families(settings: Settings) -> list[catalog.Family]:
    """Reconciled families compared with bronze: per-service request counts on the same tumbling
    window as ``response_time`` (a family configured with another window is left out)."""
    families = {f.name: f for f in catalog.configured_families(settings.windows)}
    reference = families["response_time"]
    return [
        families[name]
        for name in SERVICE_REQUEST_COUNTS
        if families[name].window == reference.window and families[name].slide is None
    ]


def request_counts_comparison(
    events: DataFrame, reconciled: Mapping[str, DataFrame], window: str
) -> DataFrame:
    """Per (window_start, service): bronze ``events_count`` beside each reconciled family's
    request count (``<family>_count``); a side with no row counts 0.

    ``events`` is one day of bronze events, ``reconciled`` maps family name to that day of its
    reconciled table.
    """
    comparison = (
        events.where(F.col("service").isNotNull())
        .groupBy(F.window("event_time", window).start.alias("window_start"), "service")
        .agg(F.count(F.lit(1)).alias("events_count"))
    )
    for family, table in reconciled.items():
        counts = table.select(
            "window_start",
            "service",
            F.col(SERVICE_REQUEST_COUNTS[family]).cast("long").alias(f"{family}_count"),
        )
        comparison = comparison.join(counts, ["window_start", "service"], "full_outer")
    count_columns = ["events_count", *(f"{family}_count" for family in reconciled)]
    return comparison.select(
        "window_start",
        "service",
        *[F.coalesce(F.col(c), F.lit(0)).alias(c) for c in count_columns],
    )


def request_counts_expectations(families: Sequence[str], window: str) -> list[Expectation]:
    expect = _gx().expectations
    return [
        expect.UnexpectedRowsExpectation(
            unexpected_rows_query=_select_where(
                ["window_start", "service", "events_count", f"{family}_count"],
                f"events_count <> {family}_count",
            ),
            description=(
                f"reconciled/{family}.{SERVICE_REQUEST_COUNTS[family]} equals the number of "
                f"bronze events per (service, {window} window)"
            ),
        )
        for family in families
    ]


# --------------------------------------------------------------------------------------------
# Reading one day
# --------------------------------------------------------------------------------------------


def read_day(spark: SparkSession, settings: Settings, check: TableCheck, day: date) -> DataFrame:
    """One day of a table with the schema found ON DISK (so drift shows), or an empty frame with
    the declared schema when the day has no files."""
    root = table_path(settings, check.name)
    partition = f"{root}/{check.date_column}={day.isoformat()}"
    if HadoopFS(spark).list_files(partition, ".parquet"):
        return spark.read.option("basePath", root).parquet(partition)
    return spark.createDataFrame([], table_schema(spark, check.name))


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@dataclass
class Failure:
    """One failed expectation: what was expected of which column, and what was found."""

    suite: str
    expectation: str  # GX expectation type, e.g. expect_column_values_to_be_between
    column: str | None
    observed: Any = None
    unexpected_count: int | None = None
    sample: list = field(default_factory=list)  # a few unexpected values or rows
    description: str = ""
    expected: str = ""  # the expectation's bounds or set, parameters filled in
    error: str | None = None  # GX could not evaluate it (e.g. a missing column)

    def line(self) -> str:
        where = f" on {self.column}" if self.column else ""
        if self.error:
            return f"{self.suite}: {self.expectation}{where} could not run: {self.error}"
        found = f"observed {self.observed}" if self.observed is not None else ""
        if self.unexpected_count:
            found = f"{self.unexpected_count} unexpected, e.g. {self.sample[:3]}"
        if self.expected:
            found = f"{found} (expected {self.expected})".lstrip()
        return f"{self.suite}: {self.expectation}{where}: {found}".rstrip(": ")


@dataclass
class SuiteResult:
    suite: str
    success: bool
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    docs_page: str = ""


@dataclass
class QualityResult:
    """The verdict of one run over one day (what the job writes as JSON)."""

    day: str
    success: bool
    suites: list[SuiteResult]
    parameters: dict[str, str]
    data_docs_index: str
    run_id: str = ""
    started_at: str = ""
    duration_s: float = 0.0

    @property
    def failed_suites(self) -> list[str]:
        return [suite.suite for suite in self.suites if not suite.success]

    @property
    def failures(self) -> list[Failure]:
        return [failure for suite in self.suites for failure in suite.failures]

    def summary(self) -> str:
        passed = sum(suite.success for suite in self.suites)
        head = f"quality {self.day}: {passed}/{len(self.suites)} suites passed"
        if self.success:
            return head
        lines = [head + f"; failed: {', '.join(self.failed_suites)}"]
        lines += [f"  - {failure.line()}" for failure in self.failures]
        lines.append(f"  Data Docs: {self.data_docs_index}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityResult:
        suites = [
            SuiteResult(
                **{
                    **suite,
                    "failures": [Failure(**failure) for failure in suite.get("failures", [])],
                }
            )
            for suite in data["suites"]
        ]
        return cls(**{**data, "suites": suites})


def result_path(settings: Settings, day: date) -> Path:
    return Path(settings.reports_dir) / "quality" / f"{day.isoformat()}.json"


def write_result(settings: Settings, result: QualityResult) -> Path:
    """Write the verdict to ``<reports_dir>/quality/<day>.json`` (atomically replaced)."""
    path = result_path(settings, date.fromisoformat(result.day))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    partial.replace(path)
    return path


def load_result(settings: Settings, day: date) -> QualityResult | None:
    path = result_path(settings, day)
    if not path.exists():
        return None
    return QualityResult.from_dict(json.loads(path.read_text()))


#: Expectation arguments that say what was expected, shown with a failure.
_EXPECTED_KEYS = ("min_value", "max_value", "value_set", "type_", "strict_min", "strict_max")


def _expected(kwargs: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """``min_value=2026-01-14T23:00:00+00:00`` etc., with run-time parameters filled in."""
    parts = []
    for key in _EXPECTED_KEYS:
        value = kwargs.get(key)
        if value is None or value is False:
            continue
        if isinstance(value, Mapping) and "$PARAMETER" in value:
            name = value["$PARAMETER"]
            value = params.get(name, f"${name}")
        if isinstance(value, datetime):
            # GX hands back parameters as given: naive, in the driver's zone (see _spark_local)
            value = (value if value.tzinfo else value.astimezone()).astimezone(UTC).isoformat()
        if isinstance(value, list | tuple) and len(value) > 10:
            value = [*value[:10], "..."]
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def _failure(
    suite: str,
    outcome: Any,
    spark: SparkSession,
    frame: DataFrame,
    params: Mapping[str, Any],
) -> Failure:
    """One failed GX expectation result as a :class:`Failure` (``params``: the run's aware
    parameter values, to show what was expected)."""
    config = outcome.expectation_config
    kwargs = dict(config.kwargs)
    column = kwargs.get("column")
    if config.type.startswith("expect_table_"):
        column = None
    elif column is None and "column_list" in kwargs:
        column = ",".join(kwargs["column_list"])
    elif column is None and "column_A" in kwargs:
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    result = dict(outcome.result or {})
    sample = result.get("partial_unexpected_index_list") or result.get(
        "partial_unexpected_list", []
    )
    error = None
    info = outcome.exception_info or {}
    if info.get("raised_exception"):
        error = str(info.get("exception_message") or "")[:500]
    query = kwargs.get("unexpected_rows_query")
    if query and not error and result.get("observed_value"):
        # GX keeps the rows only in COMPLETE results; fetch a few for the report
        frame.createOrReplaceTempView("logstream_quality_batch")
        sample = [
            row.asDict()
            for row in spark.sql(query.replace("{batch}", "logstream_quality_batch"))
            .limit(SAMPLE_SIZE)
            .collect()
        ]
    return Failure(
        suite=suite,
        expectation=config.type,
        column=column,
        observed=_json_safe(result.get("observed_value")),
        unexpected_count=result.get("unexpected_count")
        or (result.get("observed_value") if query else None),
        sample=_json_safe(list(sample)[:SAMPLE_SIZE]),
        description=str(config.description or ""),
        expected=_expected(kwargs, params),
        error=error,
    )


# --------------------------------------------------------------------------------------------
# Running the suites
# --------------------------------------------------------------------------------------------


def docs_dir(settings: Settings) -> Path:
    """The local Data Docs site; ``reports_dir`` must be a local folder."""
    reports = str(settings.reports_dir)
    if "://" in reports and not reports.startswith("file://"):
        raise ConfigError(
            f"reports_dir={reports!r} is not a local folder; Data Docs and quality results are "
            "written locally: set LOGSTREAM_REPORTS_DIR to a local path"
        )
    return Path(reports.removeprefix("file://")) / "data_docs"


def _context(site_dir: Path) -> AbstractDataContext:
    gx = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(site_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def prune_docs(site_dir: Path, keep_days: int = DOCS_KEEP_DAYS, now: float | None = None) -> int:
    """Delete validation pages older than ``keep_days``; returns how many files went."""
    cutoff = (now or time.time()) - keep_days * 86_400
    removed = 0
    root = site_dir / "validations"
    if not root.exists():
        return 0
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            path = Path(folder) / name
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        if folder != str(root) and not os.listdir(folder):
            os.rmdir(folder)
    return removed


def _suite_frame(
    spark: SparkSession, settings: Settings, name: str, day: date
) -> tuple[DataFrame, list[Expectation], list[str]]:
    """The DataFrame a suite validates, its expectations and the columns that identify a row."""
    checks = table_checks(settings)
    if name == REQUEST_COUNTS_CHECK:
        families = request_counts_families(settings)
        window = families[0].window if families else "1 minute"
        reconciled = {
            family.name: read_day(spark, settings, checks[f"reconciled/{family.name}"], day)
            for family in families
        }
        events = read_day(spark, settings, checks["events"], day)
        frame = request_counts_comparison(events, reconciled, window)
        expectations = request_counts_expectations([f.name for f in families], window)
        return frame, expectations, ["window_start", "service"]
    check = checks[name]
    frame = read_day(spark, settings, check, day)
    return frame, table_expectations(check, table_schema(spark, name)), list(check.keys)


class QualityRun:
    """One GX validation run: an ephemeral context with the local Data Docs site, a Spark data
    source, and one suite + whole-DataFrame batch + validation definition per validated frame.

    ``params`` are the run-time ``$PARAMETER`` values (aware datetimes, see
    :func:`expectation_parameters`); ``name`` labels the run in Data Docs.
    """

    def __init__(
        self, spark: SparkSession, site_dir: Path, params: Mapping[str, Any], name: str
    ) -> None:
        from great_expectations.core.run_identifier import RunIdentifier

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        self.spark = spark
        self.site_dir = site_dir
        self.site_dir.mkdir(parents=True, exist_ok=True)
        self.params = dict(params)
        self.context = _context(site_dir)
        self.source = self.context.data_sources.add_spark(name="logstream", persist=False)
        self.run_id = RunIdentifier(run_name=name, run_time=datetime.now(UTC))

    def validate(
        self,
        name: str,
        frame: DataFrame,
        expectations: Sequence[Expectation],
        index_columns: Sequence[str] = (),
        cache: bool = True,
        params: Mapping[str, Any] | None = None,
    ) -> SuiteResult:
        """Validate ``frame`` against a suite ``name`` made of ``expectations``.

        First for verdicts only (each map check is one count, bundled into few Spark jobs); a
        failed suite is validated again with details (unexpected values and the identifying
        ``index_columns`` of their rows), which replaces the stored result so Data Docs show them.
        ``cache`` keeps the frame in memory for the several passes GX makes (not for big tables).
        ``params`` replace the run's parameter values for this suite.
        """
        gx = _gx()
        gx_name = name.replace("/", ".")
        # validating a name again in the same run replaces its suite and result
        suite = self.context.suites.add_or_update(
            gx.ExpectationSuite(name=gx_name, expectations=list(expectations))
        )
        if gx_name in self.source.get_asset_names():
            batch = self.source.get_asset(gx_name).get_batch_definition("day")
        else:
            batch = self.source.add_dataframe_asset(
                name=gx_name
            ).add_batch_definition_whole_dataframe("day")
        definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=gx_name, data=batch, suite=suite)
        )
        aware = dict(self.params if params is None else params)
        values = {key: _spark_local(value) for key, value in aware.items()}
        if cache:
            frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
        try:

            def run(result_format: str | dict) -> Any:
                return definition.run(
                    batch_parameters={"dataframe": frame},
                    expectation_parameters=values,
                    result_format=result_format,
                    run_id=self.run_id,
                )

            validation = run("BOOLEAN_ONLY")
            if not validation.success:
                validation = run(
                    {
                        "result_format": "SUMMARY",
                        "partial_unexpected_count": SAMPLE_SIZE,
                        "unexpected_index_column_names": list(index_columns),
                    }
                )
            failures = [
                _failure(name, outcome, self.spark, frame, aware)
                for outcome in validation.results
                if not outcome.success
            ]
        finally:
            if cache:
                frame.unpersist()
        log.info(
            "suite validated",
            extra={"suite": name, "success": validation.success, "failed": len(failures)},
        )
        return SuiteResult(
            suite=name,
            success=bool(validation.success),
            evaluated=len(validation.results),
            failures=failures,
        )

    def build_docs(self, results: Sequence[SuiteResult]) -> str:
        """Render the Data Docs site; fills each result's page; returns the index URL."""
        index = self.context.build_data_docs(site_names=[DOCS_SITE])[DOCS_SITE]
        pages = {}
        for key in self.context.validation_results_store.list_keys():
            urls = self.context.get_docs_sites_urls(resource_identifier=key, site_name=DOCS_SITE)
            if urls and urls[0].get("site_url"):
                pages[key.expectation_suite_identifier.name] = urls[0]["site_url"]
        for result in results:
            result.docs_page = pages.get(result.suite.replace("/", "."), "")
        prune_docs(self.site_dir)
        return index


def run_quality(
    spark: SparkSession,
    settings: Settings,
    day: date,
    suites: str | Iterable[str] | None = None,
    params: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
    run_id: str = "",
) -> QualityResult:
    """Validate ``day`` of the selected suites (default ``all``) and build the Data Docs site.

    ``params`` override the run-time parameters (see :func:`expectation_parameters`). Returns the
    verdict; it does not write it (the job does) and does not raise on failed expectations.
    """
    started = time.monotonic()
    started_at = datetime.now(UTC)
    names = resolve_suites(settings, suites)
    values = expectation_parameters(day, params, now)
    run = QualityRun(spark, docs_dir(settings), values, f"logstream-{day.isoformat()}")
    outcomes = []
    for name in names:
        frame, expectations, index_columns = _suite_frame(spark, settings, name, day)
        # bronze tables are big and GX prunes their columns per pass: not cached
        big = name in {"events", "user_events"}
        outcomes.append(run.validate(name, frame, expectations, index_columns, cache=not big))
    index = run.build_docs(outcomes)
    result = QualityResult(
        day=day.isoformat(),
        success=all(outcome.success for outcome in outcomes),
        suites=outcomes,
        parameters={key: value.isoformat() for key, value in values.items()},
        data_docs_index=index,
        run_id=run_id,
        started_at=started_at.isoformat(timespec="seconds"),
        duration_s=round(time.monotonic() - started, 3),
    )
    log.info("quality run finished", extra={"day": result.day, "success": result.success})
    return result


# --------------------------------------------------------------------------------------------
# Airflow side: which day and suites a run checks, and the alert when it fails
# --------------------------------------------------------------------------------------------


def plan_run(
    run_type: str,
    logical_date: datetime | None,
    requested_date: str = "",
    requested_suites: str = "",
    asset_extras: Sequence[Mapping[str, Any]] = (),
) -> dict[str, str]:
    """The day and suites for one ``data_quality`` run.

    * a date given in the run's params wins;
    * a scheduled (hourly) or backfilled run checks the streamed tables of its UTC day;
    * a run triggered by reconciliation checks everything for the day named in the asset event's
      extra (``date``, or the last of ``dates``/``days``), else the previous UTC day; when the
      reconciliation came from a backfill (``origin: backfill``) only the reconciled tables are
      checked: the streamed tables never held those archived days;
    * a manual run checks everything for the previous UTC day.
    """
    now = as_utc(logical_date or datetime.now(UTC))
    scheduled = run_type in {"scheduled", "backfill"}  # cron ticks, live or replayed
    day = now.date() if scheduled else now.date() - timedelta(days=1)
    if run_type == "asset_triggered":
        for extra in asset_extras:
            named = extra.get("date") or (extra.get("dates") or extra.get("days") or [None])[-1]
            if named:
                day = date.fromisoformat(str(named))
    if requested_date:
        try:
            day = date.fromisoformat(requested_date.strip())
        except ValueError:
            raise ConfigError(
                f"date={requested_date!r} is not a date; write YYYY-MM-DD or leave it empty"
            ) from None
    backfilled = run_type == "asset_triggered" and any(
        extra.get("origin") == "backfill" for extra in asset_extras
    )
    default = "streamed" if scheduled else "reconciled" if backfilled else "all"
    suites = requested_suites.strip() or default
    return {"date": day.isoformat(), "suites": suites}


def quality_alert(result: QualityResult, links: Mapping[str, str] | None = None) -> Alert:
    """The on-call alert for a failed quality run: which suites, which expectations, Data Docs."""
    failed = result.failed_suites
    failures = result.failures
    pages = {
        f"data_docs:{suite.suite}": suite.docs_page
        for suite in result.suites
        if not suite.success and suite.docs_page
    }
    return Alert(
        dedup_key=f"quality:{result.day}:{','.join(sorted(failed))}",
        kind="quality_failure",
        severity="critical",
        summary=(
            f"data quality failed for {result.day}: {len(failures)} expectation(s) in "
            f"{', '.join(failed)}"
        ),
        details={
            "date": result.day,
            "failed_suites": failed,
            "failed_expectations": [failure.line() for failure in failures[:20]],
            "suites_passed": sum(suite.success for suite in result.suites),
            "suites_total": len(result.suites),
            "parameters": result.parameters,
        },
        links={"data_docs": result.data_docs_index, **pages, **dict(links or {})},
    )


def quality_failure_alert(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of the validate task: the quality alert when this run's verdict
    failed, else (the job could not run) the generic pipeline-failure alert. Never raises."""
    try:
        ti = context.get("task_instance") or context.get("ti")
        run_id = str(context.get("run_id") or getattr(ti, "run_id", ""))
        plan = ti.xcom_pull(task_ids="plan") if ti is not None else None
        settings = Settings.load()
        result = load_result(settings, date.fromisoformat(plan["date"])) if plan else None
        if result is not None and result.run_id == run_id and not result.success:
            log_url = str(getattr(ti, "log_url", "") or "")
            notify(quality_alert(result, {"log": log_url} if log_url else None), None, settings)
            return
    except Exception as exc:  # noqa: BLE001 - fall back to the generic alert below
        log.error("could not build the quality alert", extra={"error": str(exc)})
    task_failure_alert(context)
