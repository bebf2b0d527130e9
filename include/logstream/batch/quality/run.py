"""Run the selected suites on one day of the sink tables and build the Data Docs site.

Each table's day is read by partition with the schema found on disk (so schema drift shows) and
validated as one whole DataFrame; the cross-table suite validates a comparison frame of bronze
events and reconciled request counts. :func:`run_quality` returns the verdict; the job writes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession

from logstream.batch.quality.checks import REQUEST_COUNTS_CHECK, TableCheck, table_checks
from logstream.batch.quality.docs import docs_site
from logstream.batch.quality.expectations import table_expectations
from logstream.batch.quality.plan import expectation_parameters, resolve_suites
from logstream.batch.quality.request_counts import (
    request_counts_comparison,
    request_counts_expectations,
    request_counts_families,
)
from logstream.batch.quality.result import QualityResult
from logstream.batch.quality.validation import QualityRun
from logstream.config import Settings
from logstream.storage.fs import HadoopFS
from logstream.storage.tables import table_path, table_schema

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

log = logging.getLogger(__name__)

#: Bronze tables are big and GX prunes their columns per pass: their frames are not cached.
UNCACHED = frozenset({"events", "user_events"})


def read_day(spark: SparkSession, settings: Settings, check: TableCheck, day: date) -> DataFrame:
    """One day of a table with the schema found ON DISK (so drift shows), or an empty frame with
    the declared schema when the day has no files."""
    root = table_path(settings, check.name)
    partition = f"{root}/{check.date_column}={day.isoformat()}"
    if HadoopFS(spark).list_files(partition, ".parquet"):
        return spark.read.option("basePath", root).parquet(partition)
    return spark.createDataFrame([], table_schema(spark, check.name))


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
    outcomes = []
    with docs_site(settings) as site:
        run = QualityRun(spark, site.local_dir, values, f"logstream-{day.isoformat()}")
        for name in names:
            frame, expectations, index_columns = _suite_frame(spark, settings, name, day)
            cache = name not in UNCACHED
            outcomes.append(run.validate(name, frame, expectations, index_columns, cache=cache))
        index = site.publish(run.build_docs(outcomes), outcomes)
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
