"""Hostile input against the parser: no catastrophic backtracking, no blow-up (SPEC §3).

    .venv/bin/python bench/parse_hostile.py [--mb 8] [--repeat 3] [--out FILE]

Parses, in one local Spark session, about ``--mb`` MB of each kind of record and reports the cost
per MB against ordinary access-log lines parsed in the same run (the baseline). Every kind of
hostile line is tried against every built-in format under ``auto``, with ``max_record_bytes``
raised to 256 KB so that 100 KB lines reach the tokenizer instead of being quarantined as
``oversized`` (which is what happens with the default of 64 KB: that row is measured too).
A pattern that backtracks shows up as a cost per MB hundreds of times the baseline; the budget
is 10x. Exit status 1 when a kind is over budget.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 10.0


def _kinds(rng: random.Random) -> dict[str, list[bytes]]:
    """name -> one sample line (repeated to fill the size)."""
    prefix = b'10.0.0.1 - - [15/Jan/2024:11:00:00 +0000] "GET /'
    return {
        "baseline: combined lines": [
            b'10.0.0.%d - - [15/Jan/2024:11:00:00 +0000] "GET /a/%d HTTP/1.1" 200 %d "-" "curl/8"'
            % (i % 250, i, i)
            for i in range(1000)
        ],
        "100 KB request with escaped quotes, never closed": [prefix + b'a\\"' * 34_000],
        "100 KB of X-Forwarded-For-like list": [b"1.2.3.4, " * 11_000 + b"- - [x]"],
        "100 KB of spaces between fields": [prefix + b" " * 100_000 + b'" 200 1'],
        "100 KB of quotes": [b'"' * 100_000],
        "100 KB of brackets (JSON-looking)": [b"[" * 100_000],
        "100 KB nested JSON": [b'{"a":' * 20_000 + b"1" + b"}" * 20_000],
        "100 KB binary garbage": [bytes(rng.getrandbits(8) for _ in range(100_000))],
        "100 KB syslog header, then garbage": [b"<13>Sep 15 16:13:46 host app: " + b"x" * 100_000],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=8.0, help="MB of each kind")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    os.environ.setdefault("LOGSTREAM_STATE_DIR", str(ROOT / ".local" / "bench-hostile"))

    from logstream import schemas
    from logstream.config import Settings
    from logstream.runtime.spark import build_spark_session
    from logstream.transforms.parsing import ParseOptions, parse_log_records

    settings = Settings.load(env={})
    spark = build_spark_session("bench-hostile", settings.replace(spark_master="local[2]"))
    rng = random.Random(7)  # noqa: S311 - seeded garbage, not secrets
    limits = {"max_record_bytes=262144": 262_144, "default max_record_bytes": 65_536}
    results: list[tuple[str, str, float, int]] = []
    for limit_name, limit in limits.items():
        parse = parse_log_records(ParseOptions(max_record_bytes=limit))
        for kind, samples in _kinds(rng).items():
            size = sum(len(s) for s in samples)
            copies = max(1, int(args.mb * 1e6 / size))
            rows = [
                (None, sample, "logs", 0, offset, None)
                for offset, sample in enumerate(samples * copies)
            ]
            frame = spark.createDataFrame(rows, schemas.KAFKA_RECORD).cache()
            frame.count()
            timings = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                reasons = (
                    frame.transform(parse).groupBy("reason").count().collect()
                )  # every row parsed, nothing written
                timings.append(time.perf_counter() - started)
            frame.unpersist()
            megabytes = size * copies / 1e6
            reason = ", ".join(sorted(str(row["reason"]) for row in reasons))
            results.append((limit_name, kind, statistics.median(timings) / megabytes, len(rows)))
            print(f"{limit_name} | {kind}: {reason}", file=sys.stderr)
    spark.stop()
    baseline = {limit: cost for limit, kind, cost, _ in results if kind.startswith("baseline")}
    lines = [
        f"Hostile input, {args.mb:g} MB of each kind, median of {args.repeat}, local[2]",
        "",
        "| max_record_bytes | kind | records | s per MB | vs baseline |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    over = []
    for limit, kind, cost, records in results:
        ratio = cost / baseline[limit]
        lines.append(f"| {limit} | {kind} | {records:,} | {cost:.3f} | {ratio:.2f}x |")
        if ratio > BUDGET:
            over.append(kind)
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")
    if over:
        print(f"over the {BUDGET:g}x budget: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
