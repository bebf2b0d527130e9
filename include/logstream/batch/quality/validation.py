"""Validate Spark DataFrames with Great Expectations and report what failed.

A :class:`QualityRun` holds one ephemeral GX context (with the local Data Docs site) and a Spark
data source; each suite is validated on one whole-DataFrame batch, so the data stays in the JVM
(no pandas conversion). Each failed GX outcome becomes a :class:`Failure` naming its column, what
was expected (run-time parameters filled in), what was observed and a few unexpected rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from logstream.batch.quality.docs import build_site, docs_context
from logstream.batch.quality.result import Failure, SuiteResult, json_safe
from logstream.timeutil import as_utc, from_spark

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

log = logging.getLogger(__name__)

#: Unexpected values / rows kept per failed expectation in the result and the alert.
SAMPLE_SIZE = 5
#: Expectation arguments that say what was expected, shown with a failure.
_EXPECTED_KEYS = ("min_value", "max_value", "value_set", "type_", "strict_min", "strict_max")


def spark_local(value: datetime) -> datetime:
    """An aware datetime as PySpark shows timestamps: naive, in the driver's local time zone.

    GX compares collected values (PySpark turns them into local naive datetimes) with the
    parameters, and Spark reads naive literals as local time, so both sides must agree.
    """
    return datetime.fromtimestamp(as_utc(value).timestamp())


class QualityRun:
    """One GX validation run: an ephemeral context with the local Data Docs site, a Spark data
    source, and one suite + whole-DataFrame batch + validation definition per validated frame.

    ``params`` are the run-time ``$PARAMETER`` values (aware datetimes, see
    :func:`logstream.batch.quality.plan.expectation_parameters`); ``name`` labels the run in
    Data Docs.
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
        self.context = docs_context(site_dir)
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
        import great_expectations as gx

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
        values = {key: spark_local(value) for key, value in aware.items()}
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
        return build_site(self.context, self.site_dir, results)


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
            # GX hands back parameters as given: naive, in the driver's zone (see spark_local)
            value = from_spark(value).isoformat()
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
        observed=json_safe(result.get("observed_value")),
        unexpected_count=result.get("unexpected_count")
        or (result.get("observed_value") if query else None),
        sample=json_safe(list(sample)[:SAMPLE_SIZE]),
        description=str(config.description or ""),
        expected=_expected(kwargs, params),
        error=error,
    )
