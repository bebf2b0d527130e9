"""``logstream``: the operators' and tests' command line (SPEC §10)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from logstream import logs
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


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from logstream.kafka.admin import ensure_topics

    partitions = args.partitions or settings.topic_partitions
    created = ensure_topics(settings.kafka_bootstrap, args.names, partitions)
    for name in args.names:
        print(f"{name}: {'created' if name in created else 'exists'}")
    return 0


def _jars(args: argparse.Namespace, settings: Settings) -> int:
    from logstream import jars

    jars.fetch(settings, force=args.force)
    for bundle in jars.BUNDLES:
        print(
            f"{bundle}: {len(jars.bundle_jars(settings, bundle))} jars in "
            f"{jars.bundle_dir(settings, bundle)}"
        )
    return 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from logstream import airflow_local
    from logstream.kafka.admin import ensure_topics
    from logstream.kafka.broker import KafkaBroker

    status = KafkaBroker(settings).start()
    ensure_topics(
        settings.kafka_bootstrap,
        [settings.logs_topic, settings.user_events_topic],
        settings.topic_partitions,
    )
    print(status.describe())
    print("airflow: starting (first start migrates the database, about a minute) ...", flush=True)
    url = airflow_local.start_standalone(settings)
    print(f"airflow: UI at {url}")
    print(
        f"airflow: user '{airflow_local.ADMIN_USER}', password in "
        f"{airflow_local.password_file(settings)}"
    )
    print(f"airflow: logs in {settings.airflow_home / 'standalone.log'}; stop with `make down`")
    return 0


def _down(args: argparse.Namespace, settings: Settings) -> int:
    from logstream import airflow_local
    from logstream.kafka.broker import KafkaBroker

    print(
        "airflow: stopped"
        if airflow_local.stop_standalone(settings)
        else "airflow: was not running"
    )
    print("kafka: stopped" if KafkaBroker(settings).stop() else "kafka: was not running")
    return 0


def _airflow_env(args: argparse.Namespace, settings: Settings) -> int:
    import shlex

    from logstream.airflow_local import airflow_env

    for key, value in airflow_env(settings).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from logstream.status import read_statuses

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

    topics = commands.add_parser("topics", help="create topics if missing")
    topics.add_argument("names", nargs="+")
    topics.add_argument("--partitions", type=int, help="default: topic_partitions setting")
    topics.set_defaults(handler=_topics)

    jars = commands.add_parser("jars", help="fetch the JVM jars from Maven Central into the cache")
    jars.add_argument("action", choices=["fetch"])
    jars.add_argument("--force", action="store_true", help="fetch again even if cached")
    jars.set_defaults(handler=_jars)

    up = commands.add_parser("up", help="start Kafka and the local Airflow; print where to look")
    up.set_defaults(handler=_up)
    down = commands.add_parser("down", help="stop the local Airflow and Kafka")
    down.set_defaults(handler=_down)
    status = commands.add_parser("status", help="progress of the streaming queries")
    status.add_argument("--json", action="store_true", help="the raw status files as JSON")
    status.set_defaults(handler=_status)

    from logstream import parse_cli, produce_cli

    parse_cli.register(commands)
    produce_cli.register(commands)

    env = commands.add_parser("airflow-env", help="print the local Airflow environment (eval it)")
    env.set_defaults(handler=_airflow_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        return handler(args, Settings.load(args.config))
    except LogstreamError as exc:
        print(f"logstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
