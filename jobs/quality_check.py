"""Data quality gates (SPEC §7.4): validate one day of the sink tables with Great Expectations.

    spark-submit jobs/quality_check.py --date YYYY-MM-DD [--suites all|streamed|reconciled|NAMES]
                                       [--param fresh_since=ISO-TIME] [--param freshness_minutes=N]
                                       [--config FILE] [--set key=value ...] [--run-id ID]

Runs the suites of logstream.batch.quality on the day's partitions, builds the Data Docs site under
``<reports_dir>/data_docs`` and writes the verdict to ``<reports_dir>/quality/<date>.json``.
Prints a summary (and every failed expectation) on stdout.
Exit codes: 0 every suite passed, 1 a suite failed, 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from logstream import logsetup
from logstream.batch.quality import (
    docs_dir,
    expectation_parameters,
    resolve_suites,
    run_quality,
    write_result,
)
from logstream.config import add_settings_arguments, settings_from_arguments
from logstream.errors import LogstreamError
from logstream.runtime.spark import build_spark_session


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--date", required=True, help="the day to check, YYYY-MM-DD (UTC)")
    parser.add_argument(
        "--suites",
        default="all",
        help="comma-separated groups (all, streamed, reconciled) and/or suite names",
    )
    parser.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="run-time expectation parameter: fresh_since=ISO-TIME or freshness_minutes=N",
    )
    add_settings_arguments(parser)
    parser.add_argument("--run-id", default="", help="recorded in the result (the Airflow run)")
    return parser.parse_args(argv)


def _pairs(items: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LogstreamError(f"{option} takes NAME=VALUE, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logsetup.configure()
    try:
        params = _pairs(args.params, "--param")
        settings = settings_from_arguments(args)
        try:
            day = date.fromisoformat(args.date)
        except ValueError:
            raise LogstreamError(f"--date {args.date!r} is not a date; write YYYY-MM-DD") from None
        suites = resolve_suites(settings, args.suites)
        expectation_parameters(day, params)  # reject bad parameters before starting Spark
        docs_dir(settings)
    except LogstreamError as exc:
        print(f"quality_check: {exc}", file=sys.stderr)
        return 2

    spark = build_spark_session("logstream-quality", settings)
    try:
        result = run_quality(spark, settings, day, suites, params, run_id=args.run_id)
    finally:
        spark.stop()
    path = write_result(settings, result)
    print(result.summary())
    print(f"result: {path}")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
