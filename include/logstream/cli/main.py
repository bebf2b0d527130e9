"""``logstream``: the operators' and tests' command line (SPEC §10)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from logstream import logsetup
from logstream.config import Settings
from logstream.errors import LogstreamError


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
    print(f"stream: {health.state}{pid}: {health.reason}")
    if health.log:
        print(f"stream: driver log {health.log}")
    if health.error_excerpt and health.state in {"failed", "stalled"}:
        print(health.error_excerpt)
    return 0 if health.state in {"running", "starting"} else 3


def _demo_traffic(settings: Settings, count: int) -> int:
    """A seeded burst of realistic traffic so a fresh install has something to look at."""
    from logstream.devtools.generator import (
        GeneratorConfig,
        iter_logs,
        iter_user_events,
        merge_by_clock,
        produce,
    )

    config = GeneratorConfig(
        seed=1,
        count=count,
        logs_topic=settings.logs_topic,
        user_events_topic=settings.user_events_topic,
    )
    user_events = max(1, count // 10)
    records = merge_by_clock(iter_logs(config), iter_user_events(config, user_events))
    return produce(records, settings.kafka_bootstrap, total=count + user_events)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from logstream import supervisor
    from logstream.kafka.admin import ensure_topics
    from logstream.kafka.broker import KafkaBroker
    from logstream.ops.alertmanager import LocalAlertmanager
    from logstream.runtime import airflow_local

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
    if args.demo:
        sent = _demo_traffic(settings, args.demo)
        print(
            f"produce: {sent:,} seeded demo records sent to {settings.logs_topic} and "
            f"{settings.user_events_topic}"
        )
    print("airflow: starting (first start migrates the database, about a minute) ...", flush=True)
    url = airflow_local.start_standalone(settings)
    print(f"airflow: UI at {url}")
    print(f"console: {airflow_local.console_url(settings)}")
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
    from logstream.kafka.broker import KafkaBroker
    from logstream.ops.alertmanager import LocalAlertmanager
    from logstream.runtime import airflow_local

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
    print("kafka: stopped" if KafkaBroker(settings).stop() else "kafka: was not running")
    return 0


def _airflow_env(args: argparse.Namespace, settings: Settings) -> int:
    import shlex

    from logstream.runtime.airflow_local import airflow_env

    for key, value in airflow_env(settings).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from logstream.stream.status import read_statuses

    statuses = read_statuses(settings.status_dir)
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
        help="start Kafka, Alertmanager, the streaming job and the local Airflow; print where "
        "to look",
    )
    up.add_argument(
        "--demo",
        type=int,
        default=20_000,
        metavar="N",
        help="seeded demo log records to send after the start (0: none; default 20000)",
    )
    up.set_defaults(handler=_up)
    down = commands.add_parser(
        "down", help="stop the local Airflow, the streaming job, Alertmanager and Kafka"
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
