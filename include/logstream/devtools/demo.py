"""The continuous demo scenario of ``make run``: live traffic from the generator, forever.

Traffic comes in cycles (default: ten minutes at 200 log records/s, plus one user event for every
ten). Each cycle is one :mod:`~logstream.devtools.generator` run whose clock starts where the last
one ended, with its scenarios placed early so a fresh install shows them within minutes:

- an error burst of ``payments`` (~40 % 5xx) from the first whole minute after 30 s, for two
  minutes: an ``error_rate_spike`` once the window before it is final;
- a DDoS burst (one IP, two accounts, 180 requests to ``auth``) in the first whole minute after
  60 s: one ``ddos_suspect``;
- a scanner in the 5-minute window that holds minute four: ``suspicious_ip``;
- throughout, late batches of users (15 minutes to 3 hours behind) and malformed records of every
  quarantine reason.

A record is sent when the wall clock reaches its simulated clock, so event time is now (minus the
generator's delivery delays). Run it with ``logstream demo start`` (``make run`` does): a detached
process with its pid file and log under ``<state_dir>/demo/``; ``logstream demo stop`` ends it.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from logstream.config import Settings
from logstream.devtools.generator import (
    GeneratedRecord,
    GeneratorConfig,
    iter_logs,
    iter_user_events,
    merge_by_clock,
    produce,
)
from logstream.errors import ConfigError, ServiceError
from logstream.runtime.server import ServerProcess, ServerStatus
from logstream.timeutil import from_ms, to_ms

DEFAULT_RATE = 200.0
DEFAULT_CYCLE_S = 600
#: Scenario placement for the demo, as shares of a cycle (see the module docstring).
SCENARIO_AT = {"error_burst_at": 0.05, "ddos_at": 0.1, "scanner_at": 0.4}
#: One user event for every this many log records.
USER_EVENTS_EVERY = 10


def cycle_config(
    start: datetime, rate: float, cycle_s: int, seed: int, logs_topic: str, user_events_topic: str
) -> GeneratorConfig:
    """The generator's configuration for the cycle that starts at ``start``."""
    return GeneratorConfig(
        seed=seed,
        count=round(rate * cycle_s),
        start=start,
        events_per_second=rate,
        logs_topic=logs_topic,
        user_events_topic=user_events_topic,
        **SCENARIO_AT,
    )


def live_records(
    rate: float,
    cycle_s: int,
    seed: int,
    logs_topic: str,
    user_events_topic: str,
    *,
    cycles: int | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[GeneratedRecord]:
    """Records of cycle after cycle (``cycles``: how many, None for ever), each yielded once the
    wall clock has reached its simulated clock. The first cycle starts now."""
    start_ms = int(clock() * 1000)
    for cycle in itertools.count() if cycles is None else range(cycles):
        config = cycle_config(
            from_ms(start_ms), rate, cycle_s, seed + cycle, logs_topic, user_events_topic
        )
        logs = iter_logs(config)
        user_events = iter_user_events(config, max(1, config.count // USER_EVENTS_EVERY))
        for record in merge_by_clock(logs, user_events):
            due = to_ms(record.clock) / 1000 if record.clock else 0.0
            wait = due - clock()
            if wait > 0:
                sleep(wait)
            yield record
        start_ms += cycle_s * 1000


class DemoTraffic(ServerProcess):
    """The demo's detached process: ``<state_dir>/demo/`` holds its pid file, its log and the
    ``started`` marker it writes once Kafka took its first record."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = Path(settings.state_dir) / "demo"
        self.started_file = self.folder / "started"
        super().__init__("the demo traffic", self.folder / "demo.pid", self.folder / "demo.log")

    def start(
        self, rate: float = DEFAULT_RATE, cycle_s: int = DEFAULT_CYCLE_S, timeout: float = 60.0
    ) -> ServerStatus:
        """Start it (idempotent) and wait until its first records reached Kafka."""
        if self.pid() is not None:
            return self.status()
        self.started_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "logstream.devtools.demo",
            "--bootstrap",
            self.settings.kafka_bootstrap,
            "--logs-topic",
            self.settings.logs_topic,
            "--user-events-topic",
            self.settings.user_events_topic,
            "--rate",
            str(rate),
            "--cycle-seconds",
            str(cycle_s),
            "--started-file",
            str(self.started_file),
        ]
        self.launch(command, self.started_file.exists, timeout)
        return self.status()

    def status(self) -> ServerStatus:
        pid = self.pid()
        address = f"{self.settings.logs_topic}, {self.settings.user_events_topic}"
        return ServerStatus(
            "demo",
            pid is not None,
            pid,
            address,
            self.folder,
            self.output,
            stopped_note="no demo traffic",
            start_with="logstream demo start",
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m logstream.devtools.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--logs-topic", default="logs")
    parser.add_argument("--user-events-topic", default="user-events")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="log records per second")
    parser.add_argument("--cycle-seconds", type=int, default=DEFAULT_CYCLE_S)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--started-file", type=Path, help="written once the first record is sent")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.cycle_seconds < 60:
        raise SystemExit("--rate must be > 0 and --cycle-seconds at least 60")

    def marked(records: Iterator[GeneratedRecord]) -> Iterator[GeneratedRecord]:
        # produce() connects before it asks for the first record: a record asked for = connected
        for index, record in enumerate(records):
            if index == 1 and args.started_file:
                args.started_file.write_text(datetime.now(UTC).isoformat())
            yield record

    records = live_records(
        args.rate, args.cycle_seconds, args.seed, args.logs_topic, args.user_events_topic
    )
    print(
        f"demo: {args.rate:g} log records/s to {args.logs_topic} (+1 user event per "
        f"{USER_EVENTS_EVERY}) in cycles of {args.cycle_seconds} s; stop: `logstream demo stop`",
        flush=True,
    )
    try:
        produce(marked(records), args.bootstrap, progress=False)
    except (ServiceError, ConfigError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
