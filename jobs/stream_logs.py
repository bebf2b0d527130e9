"""The logstream streaming job: Kafka -> events, quarantine, metrics, anomalies, late data.

    spark-submit jobs/stream_logs.py [--config FILE] [--set key=value ...]
                                     [--pipelines logs,user_events] [--available-now]

Long-running by default (processing-time trigger); ``--available-now`` processes everything
Kafka holds, end to end, then exits (catch-up, tests, benchmarks). Settings come from the YAML
file and ``--set`` overrides (see logstream.config.Settings); never from Airflow Variables.
Alerts go out on a background thread (a hanging receiver never stalls a micro-batch); those
still queued at shutdown get up to ALERT_FLUSH_S seconds after Spark stops.
SIGTERM or SIGINT stops every query, lets each finalizer end its round, then stops Spark
(:class:`QueryStopper`).
Exit codes: 0 stopped cleanly, 1 a query failed (the error is printed), 2 bad arguments/config.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from pyspark.sql import SparkSession

from logstream import logsetup
from logstream.alerts import BackgroundAlertSink, build_alert_sink
from logstream.config import add_settings_arguments, settings_from_arguments
from logstream.errors import LogstreamError
from logstream.runtime.cluster import standalone_driver_id, stream_app_name
from logstream.runtime.spark import build_spark_session
from logstream.storage.fs import Storage
from logstream.stream.job import RunOptions, run_pipeline, stop_all
from logstream.stream.status import StatusListener, TotalsRegistry, start_metrics_server
from logstream.timeutil import interval_ms

#: How long queued alerts may take to go out at shutdown (the supervisor's stop grace is longer).
ALERT_FLUSH_S = 10.0
#: How often the main thread looks for a failed finalizer while the queries run (seconds).
FAILURE_POLL_S = 2


class QueryStopper:
    """Orderly stop on SIGTERM or SIGINT: every query is stopped (checkpoints stay consistent),
    then the session. The main thread waits inside a py4j call (awaitAnyTermination) and py4j is
    not re-entrant, so the queries are stopped from one thread of their own; ``finish()`` joins it
    before ``spark.stop()``, which otherwise races a ``query.stop()`` still cancelling its jobs
    ("Cannot call methods on a stopped SparkContext"), and ignores signals from then on."""

    def __init__(self, spark: SparkSession) -> None:
        self._spark = spark
        self._thread: threading.Thread | None = None
        self._finishing = False

    def request(self, signum: int, frame: object) -> None:
        if self._thread is None and not self._finishing:  # later signals change nothing
            self._thread = threading.Thread(
                target=self._stop_queries, args=(signal.Signals(signum).name,), daemon=True
            )
            self._thread.start()

    def _stop_queries(self, signal_name: str) -> None:
        print(f"stream_logs: {signal_name}: stopping the queries, then Spark", flush=True)
        for query in self._spark.streams.active:
            query.stop()

    def finish(self, timeout_s: float = 60.0) -> None:
        """The main thread stops what is left: wait for a signal's stop, ignore later ones."""
        self._finishing = True
        if self._thread is not None:
            self._thread.join(timeout_s)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_settings_arguments(parser)
    parser.add_argument("--pipelines", default="logs,user_events")
    parser.add_argument("--available-now", action="store_true", help="catch up, then exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logsetup.configure()
    try:
        settings = settings_from_arguments(args)
        pipelines = tuple(p.strip() for p in args.pipelines.split(",") if p.strip())
        unknown = set(pipelines) - {"logs", "user_events"}
        if unknown:
            raise LogstreamError(f"unknown pipeline(s) {sorted(unknown)}; use logs, user_events")
        channels = build_alert_sink(settings.alert_sink, settings)
    except (LogstreamError, ValueError) as exc:
        print(f"stream_logs: {exc}", file=sys.stderr)
        return 2

    # on a cluster the application's name says which checkpoint root and driver it is
    spark = build_spark_session(stream_app_name(settings, standalone_driver_id()), settings)
    registry = TotalsRegistry()
    spark.streams.addListener(
        StatusListener(
            settings.status_dir,
            registry,
            metrics=bool(settings.metrics_port),
            trigger_interval_s=interval_ms(settings.trigger_interval) / 1000,
            storage=Storage(settings),  # status_dir may be on HDFS or S3
        )
    )
    start_metrics_server(settings.metrics_port)
    options = RunOptions(pipelines=pipelines, available_now=args.available_now)

    shutdown = QueryStopper(spark)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, shutdown.request)
    alert_sink = BackgroundAlertSink(channels)
    try:
        running = run_pipeline(spark, settings, options, registry, alert_sink)
        if not args.available_now:
            # a finalizer that fails stops the job too (its landing would fail the query at
            # the next batch; the traffic may be idle until then)
            while not spark.streams.awaitAnyTermination(FAILURE_POLL_S):
                if any(i.handler.finalizer.error is not None for i in running):
                    break
            shutdown.finish()
            stop_all(running)
            failures = [f for f in (i.failure() for i in running) if f]
            if failures:
                raise RuntimeError(failures[0])
    except RuntimeError as exc:
        print(f"stream_logs: {exc}", file=sys.stderr)
        return 1
    finally:
        # queries stop with Spark, so nothing is sent after close(); the worker keeps delivering
        # while Spark stops, and close() gives what is left its last ALERT_FLUSH_S seconds
        try:
            shutdown.finish()  # a signal's queries are stopped before the session they run in
            spark.stop()
        finally:
            alert_sink.close(timeout_s=ALERT_FLUSH_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
