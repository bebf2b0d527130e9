"""The Markdown report of ``bench/live_latency.py``: each figure beside the goal of issue 16."""

from __future__ import annotations

import argparse
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from live_tables import percentiles

ROOT = Path(__file__).resolve().parents[1]
#: append -> committed in events, p99 seconds, by rate (issue 16)
COMMIT_GOALS = {5000: 2.0, 10000: 3.0}
WINDOW_GOAL_S = 3.0
RSS_GOAL = 0.10
KILL_GOAL_S = 20.0
#: what the Airflow supervisor adds to a first restart: its watch task polls the driver every
#: second (supervisor/watch.py; measured 0.9-1.0 s from kill -9 to the restart), and a first
#: restart has no backoff
SUPERVISOR_DETECT_S = 1


def machine() -> str:
    """nproc, RAM, commit and date for the report's header."""
    with open("/proc/meminfo") as meminfo:
        memory_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{os.cpu_count()} cores, {memory_kb / 2**20:.0f} GiB RAM, commit {commit}, {stamp}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**missed**")


def render(
    *,
    args: argparse.Namespace,
    phases: list,
    measured,
    batches: list[dict],
    rss: list[tuple[float, int, int, int]],
    first_start: float,
    recovery: dict,
    integrity: dict,
    sender_cpu: float,
    watcher_errors: list[str],
    restarts: int,
) -> str:
    lines = [
        "### Live latency (`bench/live_latency.py`)",
        "",
        f"{machine()}; rates {', '.join(f'{r:,}' for r in args.rates)} ev/s for "
        f"{args.duration:.0f} s each after {args.warmup:.0f} s of warm-up, soak "
        f"{args.soak:.0f} s at {args.soak_rate:,.0f} ev/s"
        + (f", every watermark delay {args.delay} s" if args.delay is not None else "")
        + (" (`--quick`)" if args.quick else ""),
        "",
        "**Kafka append -> row committed in `events`** (seconds; batch durations from the "
        "status history, ms)",
        "",
        "| phase | target ev/s | sent ev/s | rows | p50 | p95 | p99 | max | batches | batch p50 "
        "| batch p95 | batch max | goal (p99) |",
        "| --- |" + " ---: |" * 11 + " --- |",
    ]
    for phase in phases:
        latencies = measured.commit_latencies(phase.start, phase.end)
        p50, p95, p99 = percentiles(latencies)
        durations = [
            float(b["batch_duration_ms"])
            for b in batches
            if b.get("num_input_rows") and phase.start <= _stamp(b) < phase.end
        ]
        d50, d95 = percentiles(durations, (50, 95))
        goal = COMMIT_GOALS.get(int(phase.rate)) if phase.name != "recovery" else None
        verdict = f"<= {goal:.0f} s: {_verdict(p99 <= goal)}" if goal and p99 is not None else "-"
        lines.append(
            f"| {phase.name} | {phase.rate:,.0f} | {phase.sent_rate:,.0f} | {len(latencies):,} "
            f"| {_s(p50)} | {_s(p95)} | {_s(p99)} | {_s(max(latencies, default=None))} "
            f"| {len(durations)} | {_ms(d50)} | {_ms(d95)} | {_ms(max(durations, default=None))} "
            f"| {verdict} |"
        )
    lines += _windows(phases, measured)
    lines += _memory(rss, first_start)
    lines += _recovery(recovery, restarts)
    lines += _integrity(integrity, sender_cpu, phases)
    if watcher_errors:
        lines += ["", f"Watcher errors: {len(watcher_errors)} (first: {watcher_errors[0]})"]
    return "\n".join(lines)


def _stamp(line: dict) -> float:
    from logstream.timeutil import parse_iso

    stamp = parse_iso(line.get("timestamp"))
    return stamp.timestamp() if stamp else 0.0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _windows(phases: list, measured) -> list[str]:
    """Window-closing record -> the window's rows committed, over the measured phases."""
    measured_phases = [p for p in phases if p.name not in ("warm-up", "recovery")]
    lines = [
        "",
        "**Window-closing record sent -> the window's rows committed** (seconds; the record "
        "is sent at window_end + delay)",
        "",
        "| table / anomaly kind | windows | p50 | p95 | p99 | max | goal (p99 <= 3 s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    merged: dict[str, list[float]] = {}
    for phase in measured_phases:
        for name, values in measured.window_latencies(phase.start, phase.end).items():
            merged.setdefault(name, []).extend(values)
    if not merged:
        lines.append("| (no window closed inside a measured phase) | 0 | - | - | - | - | - |")
    for name, values in sorted(merged.items()):
        p50, p95, p99 = percentiles(values)
        lines.append(
            f"| {name} | {len(values)} | {_s(p50)} | {_s(p95)} | {_s(p99)} | {_s(max(values))} "
            f"| {_verdict(p99 <= WINDOW_GOAL_S)} |"
        )
    return lines


def _memory(rss: list[tuple[float, int, int, int]], first_start: float) -> list[str]:
    """The first driver's RSS at 5 and 30 minutes of its life, and the trend after 5 minutes."""
    lines = ["", "**Driver memory** (the first driver process; VmRSS every 10 s)", ""]
    if not rss:
        return [*lines, "no samples"]

    def at(minutes: float) -> tuple[int, int] | None:
        target = first_start + minutes * 60
        near = min(rss, key=lambda s: abs(s[0] - target))
        return (near[2], near[3]) if abs(near[0] - target) < 30 else None

    five, thirty = at(5), at(30)
    later = [s for s in rss if s[0] >= first_start + 300]
    trend = None
    if len(later) >= 3:
        xs = [s[0] for s in later]
        ys = [s[2] / 1024 for s in later]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        spread = sum((x - mean_x) ** 2 for x in xs)
        if spread:
            trend = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    change = (thirty[0] - five[0]) / five[0] if five and thirty else None
    lines += [
        "| driver JVM at 5 min (MB) | at 30 min (MB) | change | trend after 5 min | whole job "
        "at the end (MB) | peak JVM (MB) | goal (30 min within 10 % of 5 min) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| {five[0] // 1024 if five else '-'} | {thirty[0] // 1024 if thirty else '-'} "
        f"| {'-' if change is None else f'{100 * change:+.1f} %'} "
        f"| {'-' if trend is None else f'{trend * 600:+.0f} MB/10 min'} | {rss[-1][3] // 1024} "
        f"| {max(s[2] for s in rss) // 1024} "
        f"| {'-' if change is None else _verdict(abs(change) <= RSS_GOAL)} |",
    ]
    return lines


def _recovery(recovery: dict, restarts: int) -> list[str]:
    if not recovery:
        return ["", "Recovery: not run (`--no-recovery`)."]
    progress = recovery.get("kill_progress_s")
    supervisor = SUPERVISOR_DETECT_S
    died = recovery.get("broker_job_died") or 0
    return [
        "",
        "**Recovery** (seconds)",
        "",
        "| event | measured | goal |",
        "| --- | ---: | --- |",
        f"| SIGKILL of the job -> restarted (the bench restarts it at once) "
        f"| {_s(recovery.get('kill_restart_s'))} | - |",
        f"| SIGKILL -> first progress of the new process | {_s(progress)} "
        f"| <= {KILL_GOAL_S:.0f} s: {_verdict(progress is not None and progress <= KILL_GOAL_S)} |",
        f"| SIGKILL -> first commit of records sent after it "
        f"| {_s(recovery.get('kill_commit_s'))} | - |",
        f"| the same under the Airflow supervisor: + about {SUPERVISOR_DETECT_S} s until its watch "
        f"restarts the job | about {_s((progress or 0) + supervisor)} | - |",
        f"| broker down {_s(recovery.get('broker_down_s'))} s -> records sent after its return "
        f"committed | {_s(recovery.get('broker_resume_s'))} "
        f"| resumes: {_verdict(recovery.get('broker_resume_s') is not None)} |",
        f"| the job died while the broker was down | {'yes' if died else 'no'} | - |",
        "",
        f"Restarts of the job in the run: {restarts}.",
    ]


def _integrity(integrity: dict, sender_cpu: float, phases: list) -> list[str]:
    ok = integrity["duplicates"] == 0 and integrity["missing"] == 0
    peak = max((p.sent_rate for p in phases), default=0.0)
    return [
        "",
        "**Nothing lost or duplicated** (Kafka records of the logs topic vs distinct "
        "(kafka_partition, kafka_offset) in `events` + `quarantine`)",
        "",
        "| records in the topic | acked by the sender | failed | rows | distinct | duplicates "
        "| missing | verdict |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| {integrity['topic']:,} | {integrity['acked']:,} | {integrity['failed']:,} "
        f"| {integrity['rows']:,} | {integrity['distinct']:,} | {integrity['duplicates']:,} "
        f"| {integrity['missing']:,} | {_verdict(ok)} |",
        "",
        f"Load generator (`bench/live_load.py`, Kafka's Java client): highest phase rate sent "
        f"{peak:,.0f} ev/s; {sender_cpu:.0f} CPU-seconds over the run.",
    ]
