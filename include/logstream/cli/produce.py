"""``logstream produce``: realistic, seeded traffic into the ``logs`` and ``user-events`` topics.

Registered on the main parser by ``logstream.cli.main`` with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from logstream.config import Settings
from logstream.devtools.generator import (
    GeneratedRecord,
    GeneratorConfig,
    Progress,
    iter_logs,
    iter_user_events,
    merge_by_clock,
    produce,
)
from logstream.timeutil import utc_argument

_EPILOG = """\
Records are emitted in simulated-clock order (events_per_second of event time), starting at
--start (default: now minus the span, so timestamps are current). The same --seed and --start
give byte-identical records. --rate throttles the wall-clock send rate.

examples:
  logstream produce --count 100000 --user-events 10000
  logstream produce --count 20000 --rate 2000 --seed 7
  logstream produce --count 5000 --dry-run /tmp/logs.txt && logstream parse /tmp/logs.txt
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``produce`` subcommand; its handler is ``run(args, settings)``."""
    parser = subparsers.add_parser(
        "produce",
        help="send seeded, realistic logs and user events to Kafka",
        description="Send seeded, realistic traffic to the logs and user-events topics: "
        "services with their own latency, an error burst, a DDoS burst, a scanner, late "
        "and malformed records, and a high-activity user.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=_non_negative_int, default=10_000, help="log records")
    parser.add_argument(
        "--user-events", type=_non_negative_int, default=0, metavar="N", help="user events"
    )
    parser.add_argument("--seed", type=int, help="default: random (printed in the summary)")
    parser.add_argument(
        "--rate", type=_positive_float, help="records/s sent (default: as fast as possible)"
    )
    parser.add_argument(
        "--events-per-second",
        type=_positive_float,
        default=200.0,
        help="event-time rate of the simulated clock (default: 200)",
    )
    parser.add_argument("--start", type=utc_argument, help="ISO-8601 start of the event time")
    parser.add_argument("--late-share", type=_share, default=0.02, help="default: 0.02")
    parser.add_argument("--malformed-share", type=_share, default=0.01, help="default: 0.01")
    parser.add_argument("--topic", help="logs topic (default: the logs_topic setting)")
    parser.add_argument(
        "--user-events-topic", help="user-events topic (default: the user_events_topic setting)"
    )
    parser.add_argument(
        "--dry-run",
        type=Path,
        metavar="FILE",
        help="write the log values as lines to FILE instead of Kafka (user events go to "
        "FILE's sibling <stem>.user-events<suffix>)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Generate and send (or write) the records; print a one-line summary."""
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    config = GeneratorConfig(
        seed=seed,
        count=args.count,
        start=args.start,
        events_per_second=args.events_per_second,
        late_share=args.late_share,
        malformed_share=args.malformed_share,
        max_record_bytes=settings.max_record_bytes,
        logs_topic=args.topic or settings.logs_topic,
        user_events_topic=args.user_events_topic or settings.user_events_topic,
    )
    now = datetime.now(UTC)
    start = config.resolved_start(now)
    _warn_if_out_of_bounds(start, config.span, now, settings)
    logs = iter_logs(config, now)
    tally = Tally()
    total = args.count + args.user_events
    started = time.monotonic()
    if args.dry_run:
        streams = {config.logs_topic: logs}
        targets = {config.logs_topic: args.dry_run}
        if args.user_events:
            streams[config.user_events_topic] = iter_user_events(config, args.user_events, now)
            targets[config.user_events_topic] = args.dry_run.with_name(
                f"{args.dry_run.stem}.user-events{args.dry_run.suffix}"
            )
        bar = Progress("dry-run", total, enabled=not args.quiet)
        for topic, stream in streams.items():
            _write_lines(tally.watch(stream), targets[topic], bar)
        bar.close()
        where = ", ".join(str(path) for path in targets.values())
    else:
        from logstream.kafka.admin import ensure_topics

        topics = [config.logs_topic] + ([config.user_events_topic] if args.user_events else [])
        ensure_topics(settings.kafka_bootstrap, topics, settings.topic_partitions)
        streams_in_order: Iterable[GeneratedRecord] = logs
        if args.user_events:
            users = iter_user_events(config, args.user_events, now)
            streams_in_order = merge_by_clock(logs, users)
        produce(
            tally.watch(streams_in_order),
            settings.kafka_bootstrap,
            rate=args.rate,
            progress=not args.quiet,
            total=total,
        )
        where = settings.kafka_bootstrap
    elapsed = time.monotonic() - started
    print(
        f"{tally.summary()} -> {where} in {elapsed:.1f} s "
        f"(seed={seed}, start={start.isoformat(timespec='seconds')})"
    )
    return 0


class Tally:
    """Counts records per topic, malformed ones by reason and late ones, as they stream by."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self.late: Counter[str] = Counter()

    def watch(self, records: Iterable[GeneratedRecord]) -> Iterator[GeneratedRecord]:
        for record in records:
            self.sent[record.topic] += 1
            if record.expected_reason:
                self.malformed[record.expected_reason] += 1
            if record.late:
                self.late[record.topic] += 1
            yield record

    def summary(self) -> str:
        sent = ", ".join(f"{count:,} to {topic}" for topic, count in self.sent.items())
        reasons = " ".join(f"{reason}={n}" for reason, n in sorted(self.malformed.items()))
        late = sum(self.late.values())
        malformed = sum(self.malformed.values())
        return (
            f"produced {sent or 'nothing'}; malformed {malformed}"
            + (f" ({reasons})" if reasons else "")
            + f"; late {late}"
        )


def _write_lines(records: Iterable[GeneratedRecord], path: Path, bar: Progress) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for record in records:
            out.write(record.value)
            out.write(b"\n")
            bar.update(bar.done + 1)


def _warn_if_out_of_bounds(
    start: datetime, span: timedelta, now: datetime, settings: Settings
) -> None:
    """Records far from now are quarantined as timestamp_out_of_range: say so up front."""
    too_old = start < now - timedelta(seconds=settings.timestamp_max_past_s)
    too_new = start + span > now + timedelta(seconds=settings.timestamp_max_future_s)
    if too_old or too_new:
        print(
            f"logstream produce: warning: event times starting {start.isoformat()} (span {span}) "
            "fall outside the accepted timestamp bounds; the stream will quarantine them as "
            "timestamp_out_of_range (omit --start to produce current timestamps)",
            file=sys.stderr,
        )


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 0.5:
        raise argparse.ArgumentTypeError(f"{value} must be a share between 0 and 0.5")
    return value
