"""``logstream``: the operators' and tests' command line (SPEC §10)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from logstream import logsetup
from logstream.config import Settings
from logstream.errors import LogstreamError, ServiceError


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    from logstream.kafka.admin import ensure_topics
    from logstream.kafka.broker import KafkaBroker

    broker = KafkaBroker(settings)
    if args.action == "start":
        status = broker.start()
        created = ensure_topics(
            settings.kafka_bootstrap,
            [settings.logs_topic, settings.user_events_topic],
            settings.topic_partitions,
        )
        print(status.describe())
        if created:
            print(f"created topics {', '.join(created)} ({settings.topic_partitions} partitions)")
        return 0
    if args.action == "stop":
        print("kafka: stopped" if broker.stop() else "kafka: was not running")
        return 0
    status = broker.status()
    print(status.describe())
    return 0 if status.running else 3


def _alertmanager(args: argparse.Namespace, settings: Settings) -> int:
    from logstream.ops.alertmanager import LocalAlertmanager

    manager = LocalAlertmanager(settings)
    if args.action == "start":
        print(manager.start().describe())
        print(f"alertmanager: {manager.url}")
        return 0
    if args.action == "stop":
        print("alertmanager: stopped" if manager.stop() else "alertmanager: was not running")
        return 0
    status = manager.status()
    print(status.describe())
    return 0 if status.running else 3


def _cluster(args: argparse.Namespace, settings: Settings) -> int:
    from logstream.runtime.cluster import LocalSparkCluster

    cluster = LocalSparkCluster.for_settings(settings)
    if args.action == "up":
        status = cluster.start()
        print(status.describe())
        print(
            f"submit the job to it: LOGSTREAM_SPARK_MASTER={status.master_url} "
            f"LOGSTREAM_SPARK_DEPLOY_MODE=cluster LOGSTREAM_SPARK_REST_URL={status.rest_url} "
            f"LOGSTREAM_SPARK_MASTER_UI_URL={status.web_url}"
        )
        return 0
    if args.action == "down":
        print("spark cluster: stopped" if cluster.stop() else "spark cluster: was not running")
        return 0
    status = cluster.status()
    print(status.describe())
    return 0 if status.running else 3


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from logstream.kafka.admin import ensure_topics

    partitions = args.partitions or settings.topic_partitions
    created = ensure_topics(settings.kafka_bootstrap, args.names, partitions)
    for name in args.names:
        print(f"{name}: {'created' if name in created else 'exists'}")
    return 0


def _jars(args: argparse.Namespace, settings: Settings) -> int:
    from logstream.runtime import jars

    jars.fetch(settings, force=args.force)
    for bundle in jars.BUNDLES:
        print(
            f"{bundle}: {len(jars.bundle_jars(settings, bundle))} jars in "
            f"{jars.bundle_dir(settings, bundle)}"
        )
    print(f"logstream-spark: {jars.build_udf_jar(settings, force=args.force)}")
    return 0


def _print_outcome(outcome) -> None:
    pid = f" (pid {outcome.pid})" if outcome.pid else ""
    pid = f" (driver {outcome.driver_id})" if outcome.driver_id else pid
    if outcome.launched:
        print(f"stream: {outcome.action}{pid}; before: {outcome.reason}")
    else:
        print(f"stream: {outcome.action}{pid}: {outcome.reason}")


def _stream(args: argparse.Namespace, settings: Settings) -> int:
    """Operator control of the streaming job through the supervisor (one instance, held stops)."""
    from logstream import supervisor

    if args.action == "start":
        outcome = supervisor.start_job(settings)
        _print_outcome(outcome)
        if outcome.launched and args.wait:
            health = supervisor.wait_for_progress(settings, outcome.started_at or 0.0)
            print(f"stream: {health.state}: {health.reason}")
        return 0
    if args.action == "stop":
        _print_outcome(supervisor.stop_job(settings))
        return 0
    health = supervisor.inspect(settings)
    pid = f" (pid {health.pid})" if health.pid else ""
    pid = f" (driver {health.driver_id} {health.driver_detail})" if health.driver_id else pid
    print(f"stream: {health.state}{pid}: {health.reason}")
    if health.log:
        print(f"stream: driver log {health.log}")
    if health.error_excerpt and health.state in {"failed", "stalled"}:
        print(health.error_excerpt)
    return 0 if health.state in {"running", "starting"} else 3


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from logstream.devtools.demo import DemoTraffic

    demo = DemoTraffic(settings)
    if args.action == "start":
        print(demo.start(rate=args.rate).describe())
    elif args.action == "stop":
        print("demo: stopped" if demo.stop() else "demo: was not running")
    else:
        print(demo.status().describe())
    return 0


def _first_final_windows(settings: Settings, since: float, timeout: float = 600.0) -> str:
    """Wait until the logs query has made final the first whole minute after ``since`` (epoch
    seconds) in every family group; the oldest group's final-through time."""
    from logstream.storage.fs import Storage
    from logstream.stream.status import read_statuses

    first_minute_end = (since // 60 + 2) * 60
    deadline = time.monotonic() + timeout
    oldest = "-"
    while time.monotonic() < deadline:
        for status in read_statuses(settings.status_dir, Storage(settings)):
            if status.get("query") != "ingest_logs":
                continue
            through = list((status.get("windows_final_through") or {}).values())
            if through:
                oldest = min(through)
                stamps = [datetime.fromisoformat(value).timestamp() for value in through]
                if min(stamps) >= first_minute_end:
                    return oldest
        time.sleep(2.0)
    raise ServiceError(
        f"no window became final within {timeout:.0f}s of the demo's start (final through: "
        f"{oldest}); see `logstream status` and `logstream stream status`"
    )


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from logstream import supervisor
    from logstream.devtools.demo import DemoTraffic
    from logstream.kafka.admin import ensure_topics
    from logstream.kafka.broker import KafkaBroker
    from logstream.ops.alertmanager import LocalAlertmanager
    from logstream.ops.prometheus import LocalPrometheus
    from logstream.runtime import airflow_local
    from logstream.runtime.airflow_api import AirflowApi

    airflow_local.prepare_home(settings)  # .local/ and Airflow's home 0700, the password 0600
    status = KafkaBroker(settings).start()
    ensure_topics(
        settings.kafka_bootstrap,
        [settings.logs_topic, settings.user_events_topic],
        settings.topic_partitions,
    )
    print(status.describe())
    alertmanager = LocalAlertmanager(settings)
    alertmanager.start()
    print(f"alertmanager: {alertmanager.url}")
    if settings.metrics_port:
        print(f"prometheus: {LocalPrometheus.for_settings(settings).start().url}")
    if not any(item.strip().startswith("alertmanager") for item in settings.alert_sink.split(",")):
        print(
            f"alertmanager: alert_sink={settings.alert_sink!r} does not list it; add "
            "`alertmanager` to LOGSTREAM_ALERT_SINK to route alerts through it"
        )
    print("stream: starting the streaming job (checkpoints are checked first) ...", flush=True)
    outcome = supervisor.start_job(settings)
    _print_outcome(outcome)
    if outcome.launched:
        health = supervisor.wait_for_progress(settings, outcome.started_at or 0.0)
        print(f"stream: {health.state}: {health.reason}")
    demo_started = time.time()
    if args.demo_rate:
        DemoTraffic(settings).start(rate=args.demo_rate)
        print(
            f"demo: {args.demo_rate:g} records/s of live traffic to {settings.logs_topic} and "
            f"{settings.user_events_topic} (an error burst, a DDoS burst, late and malformed "
            "records every 10 minutes); stop it with `logstream demo stop`"
        )
    print("airflow: starting (first start migrates the database, about a minute) ...", flush=True)
    url = airflow_local.start_standalone(settings)
    print(f"airflow: UI at {url}")
    print(f"console: {airflow_local.console_url(settings)}")
    if args.demo_rate:
        print("stream: waiting for the first final windows of the demo ...", flush=True)
        final = _first_final_windows(settings, demo_started)
        print(f"stream: windows final through {final}")
        api = AirflowApi(url, airflow_local.password_file(settings), airflow_local.ADMIN_USER)
        unpaused = api.unpause_scheduled()
        print(
            f"airflow: unpaused {', '.join(unpaused) or 'nothing (already unpaused)'}; no "
            "catch-up: data_quality checks today's streamed tables now"
        )
    else:
        print("airflow: the DAGs are paused; unpause them in the UI once your logs flow")
    print(
        f"airflow: user '{airflow_local.ADMIN_USER}', password in "
        f"{airflow_local.password_file(settings)}"
    )
    print(f"airflow: logs in {settings.airflow_home / 'standalone.log'}; stop with `make down`")
    print(
        f"tables: {settings.data_root}; progress: `logstream status`; reports: "
        f"{settings.reports_dir}"
    )
    return 0


def _down(args: argparse.Namespace, settings: Settings) -> int:
    from logstream import supervisor
    from logstream.devtools.demo import DemoTraffic
    from logstream.kafka.broker import KafkaBroker
    from logstream.ops.alertmanager import LocalAlertmanager
    from logstream.ops.prometheus import LocalPrometheus
    from logstream.runtime import airflow_local

    print("demo: stopped" if DemoTraffic(settings).stop() else "demo: was not running")
    print(
        "airflow: stopped"
        if airflow_local.stop_standalone(settings)
        else "airflow: was not running"
    )
    _print_outcome(supervisor.stop_job(settings))
    # after the job: its alert worker's last alerts can still reach Alertmanager
    print(
        "alertmanager: stopped"
        if LocalAlertmanager(settings).stop()
        else "alertmanager: was not running"
    )
    prometheus = LocalPrometheus(Path(settings.state_dir) / "prometheus")
    print("prometheus: stopped" if prometheus.stop() else "prometheus: was not running")
    print("kafka: stopped" if KafkaBroker(settings).stop() else "kafka: was not running")
    return 0


def _airflow_env(args: argparse.Namespace, settings: Settings) -> int:
    import shlex

    from logstream.runtime.airflow_local import airflow_env

    for key, value in airflow_env(settings).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from logstream.storage.fs import Storage
    from logstream.stream.status import read_statuses

    statuses = read_statuses(settings.status_dir, Storage(settings))
    if not statuses:
        print(f"no streaming status in {settings.status_dir}: the job has not run here yet")
        return 3
    if args.json:
        import json

        print(json.dumps(statuses, indent=2))
        return 0
    header = (
        f"{'query':<48} {'state':<10} {'batch':>6} {'in/s':>9} {'done/s':>9} "
        f"{'lag':>8} {'late':>7}  updated"
    )
    print(header)
    for status in statuses:
        lag = status.get("kafka_lag")
        print(
            f"{status.get('query', '?')[:48]:<48} {status.get('state', '?'):<10} "
            f"{status.get('batch_id', '-')!s:>6} {status.get('input_rows_per_second') or 0:>9.0f} "
            f"{status.get('processed_rows_per_second') or 0:>9.0f} "
            f"{'-' if lag is None else lag!s:>8} "
            f"{status.get('rows_dropped_by_watermark', 0)!s:>7}  "
            f"{status.get('updated_at', '-')}"
        )
        if status.get("exception"):
            print(f"  error: {status['exception'].splitlines()[0][:200]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logstream", description=__doc__)
    parser.add_argument("--config", help="YAML settings file (default: $LOGSTREAM_CONFIG)")
    parser.add_argument("--log-level", help="WARNING by default; INFO or DEBUG for more")
    commands = parser.add_subparsers(dest="command", required=True)

    kafka = commands.add_parser("kafka", help="run the local single-node KRaft broker")
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.set_defaults(handler=_kafka)

    alertmanager = commands.add_parser(
        "alertmanager", help="run the local Prometheus Alertmanager (loopback, a free port)"
    )
    alertmanager.add_argument("action", choices=["start", "stop", "status"])
    alertmanager.set_defaults(handler=_alertmanager)

    cluster = commands.add_parser(
        "cluster", help="run a Spark standalone cluster on loopback (a master, two workers)"
    )
    cluster.add_argument("action", choices=["up", "down", "status"])
    cluster.set_defaults(handler=_cluster)

    topics = commands.add_parser("topics", help="create topics if missing")
    topics.add_argument("names", nargs="+")
    topics.add_argument("--partitions", type=int, help="default: topic_partitions setting")
    topics.set_defaults(handler=_topics)

    jars = commands.add_parser(
        "jars",
        help="fetch the JVM jars from Maven Central into the cache and build logstream's own",
    )
    jars.add_argument("action", choices=["fetch"])
    jars.add_argument("--force", action="store_true", help="fetch again even if cached")
    jars.set_defaults(handler=_jars)

    up = commands.add_parser(
        "up",
        help="start Kafka, Alertmanager, Prometheus, the streaming job, the demo traffic and the "
        "local Airflow; print where to look",
    )
    up.add_argument(
        "--demo-rate",
        type=float,
        default=200.0,
        metavar="N",
        help="log records/s of the continuous demo scenario (0: none; default 200)",
    )
    up.set_defaults(handler=_up)
    down = commands.add_parser(
        "down",
        help="stop the demo, the local Airflow, the streaming job, Alertmanager, Prometheus and "
        "Kafka",
    )
    down.set_defaults(handler=_down)
    stream = commands.add_parser(
        "stream", help="start, stop (held until started) or inspect the streaming job"
    )
    stream.add_argument("action", choices=["start", "stop", "status"])
    stream.add_argument(
        "--wait", action="store_true", help="after start: wait until every query made progress"
    )
    stream.set_defaults(handler=_stream)
    demo = commands.add_parser(
        "demo", help="the continuous demo scenario: live generated traffic (make run starts it)"
    )
    demo.add_argument("action", choices=["start", "stop", "status"])
    demo.add_argument("--rate", type=float, default=200.0, help="log records/s (default 200)")
    demo.set_defaults(handler=_demo)
    status = commands.add_parser("status", help="progress of the streaming queries")
    status.add_argument("--json", action="store_true", help="the raw status files as JSON")
    status.set_defaults(handler=_status)

    from logstream.cli import parse, produce

    parse.register(commands)
    produce.register(commands)

    env = commands.add_parser("airflow-env", help="print the local Airflow environment (eval it)")
    env.set_defaults(handler=_airflow_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.configure(args.log_level)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        return handler(args, Settings.load(args.config))
    except LogstreamError as exc:
        print(f"logstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`logstream status | head -1`): stop quietly, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
