"""The hourly latency report (SPEC §7.3): bronze events + progress history -> table + HTML.

    spark-submit jobs/latency_report.py --hour 2026-11-25T13 [--config FILE] [--set key=value ...]

Reads bronze ``events`` of the UTC hour and the streaming queries' progress history
(``<status_dir>/history``); writes the hour's rows of the ``latency_report`` table (replacing
earlier rows of that hour) and ``<reports_dir>/latency/<hour>.html``, whose address it prints.
An hour without events writes an empty report. Settings come from the YAML file and ``--set``
overrides (see logstream.config.Settings); never from Airflow Variables.
Exit codes: 0 report written, 2 bad arguments or config.
"""

from __future__ import annotations

import argparse
import sys

from logstream import logsetup
from logstream.config import add_settings_arguments, settings_from_arguments
from logstream.errors import LogstreamError
from logstream.reports.latency import parse_hour, report_folder, run_report
from logstream.runtime.spark import build_spark_session


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--hour", required=True, help="UTC hour to report, e.g. 2026-11-25T13")
    add_settings_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logsetup.configure()
    try:
        settings = settings_from_arguments(args)
        hour = parse_hour(args.hour)
        report_folder(settings)  # a reports_dir of an unsupported scheme is a config error
    except LogstreamError as exc:
        print(f"latency_report: {exc}", file=sys.stderr)
        return 2

    spark = build_spark_session("logstream-latency-report", settings)
    try:
        result = run_report(spark, settings, hour)
    finally:
        spark.stop()
    print(f"Latency report: {result.html_url}")
    print(f"Latency table: {result.table} ({len(result.rows)} rows for {result.hour})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
