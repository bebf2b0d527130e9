"""Catch-up throughput of the streaming job against the seed tutorial's design (same run).

    .venv/bin/python bench/stream_throughput.py [--events 2000000] [--seed 7] [--repeat 1]
        [--variants tutorial,logstream,parse_land,parse_land_mix,land_only] [--out FILE]

1. starts a private Kafka broker (free loopback ports, temporary folder) and pre-loads topic
   ``bench-logs`` with a seeded mix of N log records (the ``logstream produce`` generator: JSON and
   access lines, bursts, late and malformed records);
2. runs, each in a fresh process with the same Spark settings (local[*], and logstream's
   shipped defaults for driver memory and ``maxOffsetsPerTrigger``):
   * ``logstream``: the full job (parse once -> bronze/quarantine/late -> every metric family of
     SPEC §5.1 + anomalies) with ``availableNow``, i.e. until every window that can be final is;
   * ``tutorial``: the seed's design, one streaming query per metric family, each reading Kafka
     and parsing JSON on its own, writing Parquet in append mode;
   * ``parse_land``: Kafka -> logstream's SPEC §3 parser -> bronze Parquet, nothing else (the
     ceiling for any job that parses records as logstream does);
   * ``parse_land_mix``: the same over topic ``bench-mix``, N records of a realistic mix of
     real-world formats and envelopes (``bench/log_mix.py``: nginx, Apache, ingress-nginx,
     Traefik, syslog-forwarded nginx, pino in CRI, zap in Docker json-file, ECS, Serilog,
     OpenTelemetry and logstream JSON);
   * ``land_only``: Kafka -> the tutorial's six-field JSON parse -> Parquet, nothing else;
   with ``--repeat R``, R rounds of every variant in turn (so a slow spell of the machine hits
   each variant alike);
3. prints a Markdown table (the median seconds of each variant and, with R > 1, every run;
   events/s and the ratio to the tutorial from the medians; the largest peak driver RSS) and
   writes it to ``--out`` if given.

Times are wall-clock from the first query start to the last query's end (JVM start excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{current}/task/{current}/children") as children:
                stack.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def run_variant(variant: str, workdir: Path, bootstrap: str, events: int) -> dict:
    """Run one variant in a child process, sampling its memory; returns its JSON report."""
    command = [sys.executable, __file__, "--child", variant, "--workdir", str(workdir),
               "--bootstrap", bootstrap, "--events", str(events)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(process.pid))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"variant {variant} failed (exit {process.returncode})")
    report = json.loads(out.strip().splitlines()[-1])
    report["peak_rss_mb"] = round(peak / 1024)
    return report


# -- the variants (run in the child process) ------------------------------------------------------


def _child(variant: str, workdir: Path, bootstrap: str) -> dict:
    from pyspark.sql import functions as F

    from logstream.alerts import build_alert_sink
    from logstream.config import Settings
    from logstream.runtime.spark import build_spark_session
    from logstream.stream.job import RunOptions, run_pipeline
    from logstream.stream.status import TotalsRegistry

    host, port = bootstrap.rsplit(":", 1)
    settings = Settings.load(
        env={},
        state_dir=workdir / variant,
        kafka_host=host,
        kafka_port=int(port),
        logs_topic="bench-logs",
        user_events_topic="bench-user-events",
    )
    spark = build_spark_session(f"bench-{variant}", settings)
    started = time.perf_counter()
    if variant == "logstream":
        run_pipeline(
            spark, settings, RunOptions(pipelines=("logs",), available_now=True),
            TotalsRegistry(), build_alert_sink("log"),
        )  # fmt: skip
    elif variant in ("parse_land", "parse_land_mix"):
        topic = "bench-mix" if variant == "parse_land_mix" else settings.logs_topic
        queries = [_parse_land_query(spark, settings, F, topic)]
        for query in queries:
            query.awaitTermination()
    else:
        queries = _tutorial_queries(spark, settings, F, land_only=variant == "land_only")
        for query in queries:
            query.awaitTermination()
    seconds = time.perf_counter() - started
    spark.stop()
    return {
        "variant": variant,
        "seconds": round(seconds, 2),
        "driver_memory": settings.spark_driver_memory,
        "max_offsets_per_trigger": settings.max_offsets_per_trigger,
    }


def _parse_land_query(spark, settings, F, topic):  # noqa: N803 - F is the idiom
    """logstream's own parser (SPEC §3: every format, every field, validation) landing the valid
    events of ``topic`` in a partitioned Parquet table, nothing else: the parse-and-land ceiling."""
    from logstream.stream.job import pipelines, read_kafka
    from logstream.transforms import parsing

    events = (
        read_kafka(spark, settings, topic)
        .transform(pipelines(settings)["logs"].parse)
        .transform(parsing.valid_events)
        .withColumn("processing_time", F.current_timestamp())
        .withColumn("event_date", F.to_date("event_time"))
        .withColumn("event_hour", F.hour("event_time"))
    )
    return (
        events.writeStream.format("parquet")
        .partitionBy("event_date", "event_hour")
        .option("path", f"{settings.data_root}/parse_land")
        .option("checkpointLocation", f"{settings.checkpoint_root}/parse_land")
        .queryName("parse_land")
        .trigger(availableNow=True)
        .start()
    )


def _tutorial_queries(spark, settings, F, land_only: bool):  # noqa: N803 - F is the idiom
    """The seed's design: every metric is its own query that reads and parses Kafka again."""
    from pyspark.sql import types as T

    schema = T.StructType(
        [
            T.StructField("timestamp", T.StringType()),
            T.StructField("service", T.StringType()),
            T.StructField("ip_address", T.StringType()),
            T.StructField("user_id", T.StringType()),
            T.StructField("response_time", T.DoubleType()),
            T.StructField("status_code", T.IntegerType()),
        ]
    )

    def parsed():
        return (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
            .option("subscribe", settings.logs_topic)
            .option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", settings.max_offsets_per_trigger)
            .load()
            .select(F.from_json(F.col("value").cast("string"), schema).alias("e"))
            .select("e.*")
            .withColumn("event_time", F.try_to_timestamp("timestamp"))
            .withColumn("processing_time", F.current_timestamp())
            .where(F.col("event_time").isNotNull())
        )

    def sink(frame, name, mode="append"):
        return (
            frame.writeStream.format("parquet")
            .outputMode(mode)
            .option("path", f"{settings.data_root}/{name}")
            .option("checkpointLocation", f"{settings.checkpoint_root}/{name}")
            .queryName(name)
            .trigger(availableNow=True)
            .start()
        )

    if land_only:
        return [sink(parsed(), "land_only")]

    def windowed(keys, window, delay, *aggs):
        return (
            parsed()
            .withWatermark("event_time", delay)
            .groupBy(F.window("event_time", window), *keys)
            .agg(*aggs)
        )

    users = F.size(F.collect_set("user_id"))
    return [
        sink(windowed(["service"], "1 minute", "5 minutes", F.count("*"),
                      F.avg("response_time"), F.stddev("response_time"),
                      F.percentile_approx("response_time", [0.5, 0.95, 0.99])), "response_time"),
        sink(windowed(["service"], "1 minute", "5 minutes", F.count("*"),
                      F.sum((F.col("status_code") >= 400).cast("int"))), "error_rate"),
        sink(windowed(["ip_address"], "5 minutes", "10 minutes", F.count("*"), users,
                      F.collect_set("service")), "ip_patterns"),
        sink(windowed(["service"], "1 minute", "5 minutes", F.count("*"),
                      F.sum((F.col("response_time") <= 1.0).cast("int")),
                      F.sum((F.col("status_code") == 200).cast("int"))), "sla"),
        sink(windowed(["user_id"], "5 minutes", "10 minutes", F.count("*"),
                      F.size(F.collect_set("service")), F.avg("response_time")), "user_activity"),
        sink(windowed(["service"], "1 minute", "5 minutes", F.count("*"), users),
             "service_popularity"),
        sink(windowed([], "1 minute", "5 minutes", F.count("*"), users,
                      F.size(F.collect_set("service"))), "system_health"),
        sink(windowed(["service"], "1 minute", "10 minutes", F.count("*"),
                      F.avg(F.unix_millis("processing_time") - F.unix_millis("event_time"))),
             "processing_latency"),
    ]  # fmt: skip


# -- orchestration ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--variants", default="tutorial,logstream,parse_land,land_only")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every variant")
    parser.add_argument("--out", help="write the Markdown result here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, Path(args.workdir), args.bootstrap)))
        return 0

    from logstream.config import Settings
    from logstream.devtools.generator import GeneratorConfig, iter_logs, produce
    from logstream.kafka.admin import ensure_topics
    from logstream.kafka.broker import KafkaBroker

    workdir = Path(tempfile.mkdtemp(prefix="logstream-bench-"))
    settings = Settings.load(
        env={}, state_dir=workdir, kafka_port=free_port(), kafka_controller_port=free_port(),
        kafka_heap="1g",
    )  # fmt: skip
    broker = KafkaBroker(settings)
    broker.start()
    try:
        ensure_topics(broker.bootstrap, ["bench-logs"], 4)
        config = GeneratorConfig(
            seed=args.seed, count=args.events, events_per_second=2_000.0, logs_topic="bench-logs"
        )
        print(f"loading {args.events:,} records into bench-logs ...", file=sys.stderr)
        loaded = time.perf_counter()
        produce(iter_logs(config), broker.bootstrap, total=args.events)
        if "parse_land_mix" in args.variants.split(","):
            sys.path.insert(0, str(ROOT / "bench"))
            from log_mix import iter_mix

            ensure_topics(broker.bootstrap, ["bench-mix"], 4)
            produce(iter_mix(args.events, args.seed, "bench-mix"), broker.bootstrap,
                    total=args.events)  # fmt: skip
        print(f"loaded in {time.perf_counter() - loaded:.0f}s", file=sys.stderr)
        runs: dict[str, list[dict]] = {}
        for round_number in range(1, args.repeat + 1):
            for variant in args.variants.split(","):
                print(f"running {variant} (round {round_number}) ...", file=sys.stderr)
                report = run_variant(variant, workdir / f"round{round_number}", broker.bootstrap,
                                     args.events)  # fmt: skip
                runs.setdefault(variant, []).append(report)
                print(f"  {report}", file=sys.stderr)
    finally:
        broker.stop()
    table = _table(runs, args)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")
    return 0


def _table(runs: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """The Markdown report: each variant's median time, its rate and ratio from the median."""
    median = {
        name: statistics.median(r["seconds"] for r in reports) for name, reports in runs.items()
    }
    baseline = median.get("tutorial")
    # the settings the children ran with (the same for every variant)
    ran = {(r["driver_memory"], r["max_offsets_per_trigger"]) for rs in runs.values() for r in rs}
    settings = ", ".join(
        f"driver memory {memory}, maxOffsetsPerTrigger {cap:,}" for memory, cap in ran
    )
    lines = [
        f"N = {args.events:,} records (seed {args.seed}), {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, Spark local[*], "
        f"{args.repeat} round(s) of every variant, {settings}",
        "",
        "| variant | seconds (median) | runs | events/s | vs tutorial | peak driver RSS (MB) |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, reports in runs.items():
        seconds = median[name]
        every = ", ".join(f"{r['seconds']:.1f}" for r in reports)
        ratio = f"{baseline / seconds:.2f}x" if baseline else "-"
        peak = max(r["peak_rss_mb"] for r in reports)
        rate = args.events / seconds
        lines.append(f"| {name} | {seconds:.1f} | {every} | {rate:,.0f} | {ratio} | {peak} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
