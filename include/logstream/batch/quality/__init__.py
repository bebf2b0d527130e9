"""Data quality gates (SPEC §7.4): Great Expectations suites for every sink table, run on Spark.

One expectation suite per table, built in code (the code is the definition; nothing is edited in
a GX project by hand) and validated on one day of data: the schema found on disk against the
declared one, identifying keys, declared ranges and value sets, orderings between columns, the
day's bounds, freshness against the run-time ``$fresh_since``, and a cross-table check of the
reconciled request counts against the bronze events. Verdicts go to
``<reports_dir>/quality/<day>.json`` and a local Data Docs site under ``<reports_dir>/data_docs``.

- :mod:`~logstream.batch.quality.checks`: what each table suite checks (:class:`TableCheck`,
  from the metric catalogue for metric tables) and the named suite groups.
- :mod:`~logstream.batch.quality.expectations`: the GX expectations of a table suite.
- :mod:`~logstream.batch.quality.request_counts`: the cross-table suite's comparison frame and
  expectations.
- :mod:`~logstream.batch.quality.plan`: which day, suites and parameter values a run checks.
- :mod:`~logstream.batch.quality.docs`: the GX context and its Data Docs site.
- :mod:`~logstream.batch.quality.validation`: :class:`QualityRun`, validating DataFrames and
  turning failed outcomes into :class:`Failure` records.
- :mod:`~logstream.batch.quality.run`: reading a day and :func:`run_quality`.
- :mod:`~logstream.batch.quality.result`: the verdict and its JSON file.
- :mod:`~logstream.batch.quality.alerting`: the on-call alert and the DAG's failure callback.

``great_expectations`` is imported when a suite is built or run: the Airflow side (planning a
run, the failure alert) does not pay for it. This package re-exports the names the rest of the
project imports.
"""

from __future__ import annotations

from logstream.batch.quality.alerting import quality_failure_alert
from logstream.batch.quality.docs import docs_dir
from logstream.batch.quality.plan import expectation_parameters, plan_run, resolve_suites
from logstream.batch.quality.request_counts import SERVICE_REQUEST_COUNTS
from logstream.batch.quality.result import QualityFailedError, judge_run, load_result, write_result
from logstream.batch.quality.run import run_quality

__all__ = [
    "SERVICE_REQUEST_COUNTS",
    "QualityFailedError",
    "docs_dir",
    "expectation_parameters",
    "judge_run",
    "load_result",
    "plan_run",
    "quality_failure_alert",
    "resolve_suites",
    "run_quality",
    "write_result",
]
