"""Late-data reconciliation of one UTC day (SPEC §6): bronze -> reconciled/<family>, change report.

    spark-submit jobs/reconcile_day.py --date 2026-11-25 [--config FILE] [--set key=value ...]

Recomputes every window that starts on the day, for every metric family, from the bronze tables
``events`` and ``user_events`` with the stream's own transforms; publishes each
``reconciled/<family>/window_date=<day>`` partition atomically (a re-run gives identical files);
writes the change report to ``<reports_dir>/reconciliation/<day>.json`` and the
``reconciliation_report`` table, and prints a one-line summary on stdout. A day without bronze
data is a no-op: no Spark job runs, nothing is written, and it prints ``no bronze data for <day>:
nothing to reconcile``. A day whose bronze files hold no rows publishes empty partitions and an
empty report. Settings come from the YAML file and ``--set``
overrides (see logstream.config.Settings); never from Airflow Variables.
Exit codes: 0 done, 1 the reconciliation failed (the error is printed), 2 bad arguments/config.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from datetime import UTC, datetime

from logstream import logsetup
from logstream.batch.reconcile import parse_day, reconcile_day
from logstream.catalog import configured_families
from logstream.config import add_settings_arguments, settings_from_arguments
from logstream.errors import LogstreamError
from logstream.runtime.spark import build_spark_session


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--date", required=True, help="the UTC day to reconcile, YYYY-MM-DD")
    add_settings_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logsetup.configure()
    try:
        settings = settings_from_arguments(args)
        families = configured_families(settings.windows)
        day = parse_day(args.date)
        today = datetime.now(UTC).date()
        if day > today:
            raise LogstreamError(
                f"{day} is after today ({today} UTC): there is nothing to reconcile yet"
            )
    except (LogstreamError, ValueError) as exc:
        print(f"reconcile_day: {exc}", file=sys.stderr)
        return 2

    spark = build_spark_session("logstream-reconcile", settings)
    try:
        report = reconcile_day(spark, settings, day, families)
    except Exception as exc:  # noqa: BLE001 - the trace, one readable line, then exit 1
        traceback.print_exc(file=sys.stderr)
        print(f"reconcile_day: reconciling {day} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    print(report["summary"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
