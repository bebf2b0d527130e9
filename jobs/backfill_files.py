"""Land archived log files into bronze ``events``/``quarantine``, exactly once per file and line.

    spark-submit jobs/backfill_files.py --path 's3a://bucket/nginx/2015-*.gz' [--format auto]
        [--service shop] [--start-date 2015-12-01] [--end-date 2015-12-31] [--summary FILE]
        [--config FILE] [--set key=value ...]

``--path`` is a file, folder or Hadoop glob on any Hadoop URI (quote globs). Lines are parsed as
the stream parses Kafka records (``--format``: default the parse_format setting; ``--service``:
the service of access-log lines, default the default_service setting) without wall-clock bounds.
With ``--start-date``/``--end-date`` (UTC days, inclusive) only events of those days are landed.
A re-run lands nothing twice (see logstream.batch.backfill). Prints one JSON line: files, lines,
events_landed, quarantined, skipped_already_landed, skipped_out_of_range, days_touched, ...;
``--summary`` also writes it to a file (a local path or a shared-storage URI). Settings come from
the YAML file and ``--set`` overrides (see logstream.config.Settings); never from Airflow Variables.
Exit codes: 0 done, 1 the backfill failed (nothing of the failing chunk is committed; run it
again), 2 bad arguments/config or no file matches.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback

from logstream import logsetup
from logstream.batch.backfill import BackfillRequest, backfill
from logstream.batch.backfill_request import write_summary
from logstream.config import add_settings_arguments, settings_from_arguments
from logstream.errors import LogstreamError
from logstream.runtime.spark import build_spark_session


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--path", required=True, help="file, folder or glob on any Hadoop URI")
    parser.add_argument("--format", help="record format (default: the parse_format setting)")
    parser.add_argument("--service", help="service of access-log lines")
    parser.add_argument("--start-date", help="first UTC event day landed, YYYY-MM-DD")
    parser.add_argument("--end-date", help="last UTC event day landed, YYYY-MM-DD")
    parser.add_argument(
        "--summary", help="also write the JSON summary to this file (a path or a URI)"
    )
    add_settings_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logsetup.configure()
    logging.getLogger("logstream.batch.backfill").setLevel(logging.INFO)  # progress per chunk
    try:
        settings = settings_from_arguments(args)
        request = BackfillRequest.from_params(
            args.path, args.format, args.service, args.start_date, args.end_date
        )
        request.parse_options(settings)  # an unknown format is an argument error
    except LogstreamError as exc:
        print(f"backfill_files: {exc}", file=sys.stderr)
        return 2

    spark = build_spark_session("logstream-backfill", settings)
    try:
        summary = backfill(spark, settings, request)
    except LogstreamError as exc:
        print(f"backfill_files: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the trace, one readable line, then exit 1
        traceback.print_exc(file=sys.stderr)
        print(f"backfill_files: backfilling {args.path} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    line = json.dumps(summary.as_dict())
    if args.summary:
        write_summary(settings, args.summary, summary.as_dict())
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
