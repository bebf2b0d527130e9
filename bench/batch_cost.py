"""What one live micro-batch costs, stage by stage, without Kafka or a streaming query (issue 16).

    .venv/bin/python bench/batch_cost.py [--rate 2000] [--trigger 2] [--batches 40] [--warmup 10]

Drives the ingestion handler of the streaming job (``IngestBatchHandler`` with its finalizer on
its own thread, as in production) with static frames of seeded generator records stamped as live
traffic: batch ``b`` holds ``rate * trigger`` records whose event times cover the trigger
interval before its processing time. Every family's delay is ``--delay`` seconds, so windows
become final batch after batch. The handler's stage timeline (``logstream.stream.timeline``) is
collected for every landing and every finalizer round; the report gives each stage's median and
p90 over the measured batches, the landing's total, and how long a batch's frame took to build
(outside the handler).

This isolates the job's own per-batch cost from Kafka and from the trigger's wait: the landing
total is the floor of append -> committed latency at that batch size.
"""

from __future__ import annotations

import argparse
import base64
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_load import _SLOT, write_templates

ROOT = Path(__file__).resolve().parents[1]


class Collector(logging.Handler):
    """Keeps every timeline record (the handler logs one per landing and per round)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "batch timeline":
            stages = {}
            for item in record.stages.split():
                name, _, span = item.rpartition(":")
                start, end = (int(x) for x in span.split("-"))
                stages[name] = end - start
            self.records.append(
                {"query": record.query, "batch": record.batch, "total": record.total_ms,
                 "stages": stages, "at": time.monotonic()}
            )  # fmt: skip


def stamp(kind: str, template: bytes, ms: int) -> bytes:
    instant = datetime.fromtimestamp(ms / 1000, UTC)
    text = {
        "I": instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z",
        "M": str(ms),
        "S": str(ms // 1000),
        "C": instant.strftime("%d/%b/%Y:%H:%M:%S +0000"),
    }[kind]
    return template.replace(_SLOT.encode(), text.encode())


def load_templates(path: Path) -> list[tuple[str, int, bytes | None, bytes]]:
    out = []
    for line in path.read_text().splitlines():
        kind, lag, key, value = line.split("\t")
        out.append(
            (kind, int(lag), base64.b64decode(key) if key else None, base64.b64decode(value))
        )
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000, help="records per second of traffic")
    parser.add_argument("--trigger", type=float, default=2.0, help="seconds per micro-batch")
    parser.add_argument("--batches", type=int, default=40, help="measured batches")
    parser.add_argument("--warmup", type=int, default=10, help="batches not measured")
    parser.add_argument("--delay", type=int, default=10, help="every family's delay, seconds")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from logstream import logsetup, schemas
    from logstream.alerts.model import Alert
    from logstream.catalog import anomalies
    from logstream.catalog.families import configured_families
    from logstream.config import Settings
    from logstream.runtime.spark import build_spark_session
    from logstream.stream.batch import IngestBatchHandler
    from logstream.stream.pipelines import pipelines
    from logstream.stream.status import TotalsRegistry

    class Sink:
        def send(self, alert: Alert) -> bool:
            return True

    work = Path(tempfile.mkdtemp(prefix="logstream-batch-cost-"))
    windows = {f.name: {"delay": f"{args.delay} seconds"} for f in configured_families()}
    settings = Settings.load(env={}, state_dir=work / "state", windows=windows)
    logsetup.configure("WARNING")
    collector = Collector()
    timeline_log = logging.getLogger("logstream.stream.timeline")
    timeline_log.setLevel(logging.DEBUG)
    timeline_log.addHandler(collector)

    templates_path = work / "templates.txt"
    write_templates(templates_path, 60_000, args.seed, settings.logs_topic,
                    settings.max_record_bytes)  # fmt: skip
    templates = load_templates(templates_path)

    spark = build_spark_session("logstream-batch-cost", settings)
    pipeline = pipelines(settings)["logs"]
    families = configured_families(settings.windows)
    per_batch = int(args.rate * args.trigger)
    start_ms = int(time.time() * 1000) - (args.warmup + args.batches + 5) * int(args.trigger * 1000)

    def batch_time(batch_id: int) -> int:
        return start_ms + (batch_id + 1) * int(args.trigger * 1000)

    handler = IngestBatchHandler(
        spark, settings, pipeline, families, anomalies.Thresholds(), TotalsRegistry(), Sink(),
        batch_time_ms=batch_time, query_id=lambda: "bench000", background=True,
    )  # fmt: skip
    handler.start()
    offset = 0
    build_s: list[float] = []
    wall: list[float] = []
    for batch_id in range(args.warmup + args.batches):
        began = time.monotonic()
        end_ms = batch_time(batch_id)
        rows = []
        for n in range(per_batch):
            kind, lag, key, value = templates[(offset + n) % len(templates)]
            sent = end_ms - int(args.trigger * 1000) + n * int(args.trigger * 1000) // per_batch
            if kind != "N":
                value = stamp(kind, value, sent - lag)
            rows.append((key, value, settings.logs_topic, (offset + n) % 3, offset + n,
                         datetime.fromtimestamp(sent / 1000, UTC)))  # fmt: skip
        offset += per_batch
        frame = spark.createDataFrame(rows, schemas.KAFKA_RECORD).transform(pipeline.parse)
        built = time.monotonic()
        handler(frame, batch_id)
        done = time.monotonic()
        if batch_id >= args.warmup:
            build_s.append(built - began)
            wall.append(done - built)
        # a live query waits for its next trigger; so does this loop
        time.sleep(max(0.0, args.trigger - (done - began)))
    handler.stop()
    spark.stop()

    measured = {r["batch"] for r in collector.records if r["query"] == "ingest_logs"
                and r["batch"] >= args.warmup}  # fmt: skip
    landings = [r for r in collector.records if r["query"] == "ingest_logs"
                and r["batch"] in measured]  # fmt: skip
    rounds = [r for r in collector.records if r["query"] == "ingest_logs:final"
              and r["batch"] > args.warmup]  # fmt: skip
    print(f"### Per-batch cost (`bench/batch_cost.py`)\n\n{per_batch:,} records per batch "
          f"({args.rate:,} ev/s, trigger {args.trigger:g} s, delays {args.delay} s), "
          f"{len(landings)} landings and {len(rounds)} rounds measured after {args.warmup} "
          f"batches of warm-up; ms\n")  # fmt: skip
    print("| part | stage | median | p90 | max |\n| --- | --- | ---: | ---: | ---: |")

    def rows_of(part: str, records: list[dict]) -> None:
        names = dict.fromkeys(name for r in records for name in r["stages"])
        for name in ["(total)", *names]:
            values = [r["total"] if name == "(total)" else r["stages"].get(name) for r in records]
            values = [v for v in values if v is not None]
            if values:
                print(f"| {part} | {name} | {statistics.median(values):,.0f} | "
                      f"{percentile(values, 0.9):,.0f} | {max(values):,.0f} |")  # fmt: skip

    rows_of("landing", landings)
    rows_of("round", rounds)
    print(f"| landing | (handler call, wall) | {statistics.median(wall) * 1000:,.0f} | "
          f"{percentile(wall, 0.9) * 1000:,.0f} | {max(wall) * 1000:,.0f} |")  # fmt: skip
    print(f"\nBuilding a batch's frame (not part of the job): median "
          f"{statistics.median(build_s) * 1000:,.0f} ms. Work folder: {work}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
