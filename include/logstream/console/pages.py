"""Each console page's HTML, from the data its JSON twin returns (:mod:`logstream.console.app`).

Values are escaped by :mod:`logstream.console.html`; nothing here writes data into markup
directly.
"""

from __future__ import annotations

from logstream.console.html import (
    Safe,
    day_form,
    esc,
    join,
    line_chart,
    link,
    page,
    query_link,
    table,
    tag,
)


def health_page(data: dict, base: str) -> str:
    queries = data["queries"]
    rows = [
        [
            q["query"],
            Safe(tag("span", q["state"], class_="bad")) if q["state"] == "failed" else q["state"],
            q["batch_id"],
            q["age_seconds"],
            q["input_rows_per_second"],
            q["processed_rows_per_second"],
            q["batch_duration_ms"],
            q["kafka_lag"],
            q["event_time_lag_seconds"],
            q["watermark"],
            q["windows_final_through"],
            q["rows_dropped_by_watermark"],
        ]
        for q in queries
    ]
    headers = [
        "query",
        "state",
        "batch",
        "status age (s)",
        "input rows/s",
        "processed rows/s",
        "batch duration (ms)",
        "Kafka lag",
        "event-time lag (s)",
        "watermark",
        "final through",
        "rows behind watermark",
    ]
    parts = [tag("h2", "Queries"), table(headers, rows, numeric={2, 3, 4, 5, 6, 7, 8, 11})]
    failures = [q for q in queries if q.get("exception")]
    for q in failures:
        parts.append(tag("h3", f"{q['query']}: exception"))
        parts.append(tag("pre", q["exception"]))
    hours = data["history_hours"]
    parts.append(tag("h2", f"Last {esc(hours)} h"))
    for name, series in sorted(data["series"].items()):
        charts = [
            line_chart(f"{name}: batch duration", [("ms", series["batch_duration_ms"])], " ms"),
            line_chart(f"{name}: Kafka lag", [("records", series["kafka_lag"])]),
            line_chart(f"{name}: event-time lag", [("ms", series["event_time_lag_ms"])], " ms"),
        ]
        parts.append(join(charts))
    supervisor = data["supervisor"]
    job = supervisor["job"]
    parts.append(tag("h2", "Supervisor"))
    if job is None:
        parts.append(tag("p", "no job recorded (never started, or stopped)", class_="muted"))
    else:
        parts.append(
            table(
                ["pid", "started at", "pipelines", "adopted"],
                [[job["pid"], job["started_at"], ", ".join(job["pipelines"]), job["adopted"]]],
            )
        )
    if supervisor["hold"]:
        parts.append(
            tag(
                "p",
                f"held stopped by an operator since {supervisor['hold'].get('at')}",
                class_="bad",
            )
        )
    parts.append(tag("h3", f"Restarts (last 7 days): {len(supervisor['restarts'])}"))
    parts.append(table(["at", "reason"], [[r["at"], r["reason"]] for r in supervisor["restarts"]]))
    return page("Pipeline health", base, "health", join(parts))


_SERIES = (
    ("requests/min", "requests_per_min", ""),
    ("error rate", "error_rate", " %"),
)


def windows_page(data: dict, base: str, service: str | None, charted: int) -> str:
    parts = [
        day_form(base, "windows", data["day"], {"service": service}),
        tag(
            "p",
            f"final windows through {data['final_through'] or 'n/a'}; later minutes are live "
            "(from bronze events, still changing).",
            class_="muted",
        ),
        table(
            ["service", "requests"],
            [
                [
                    link(
                        query_link(base, "windows", day=data["day"], service=s["service"]),
                        s["service"],
                    ),
                    s["requests"],
                ]
                for s in data["services"]
            ],
            numeric={1},
        ),
    ]
    for name in list(data["windows"])[:charted]:
        series = data["windows"][name]
        final = [i for i, is_final in enumerate(series["final"]) if is_final]
        live = [i for i, is_final in enumerate(series["final"]) if not is_final]
        xs = series["window_start_ms"]
        charts = []
        for title, column, unit in _SERIES:
            values = series[column]
            charts.append(
                line_chart(
                    f"{name}: {title}",
                    [
                        ("final", [(xs[i], values[i]) for i in final]),
                        ("live", [(xs[i], values[i]) for i in live]),
                    ],
                    unit,
                )
            )
        charts.append(
            line_chart(
                f"{name}: response time",
                [
                    (q, list(zip(xs, series[f"{q}_response_time"], strict=True)))
                    for q in ("p50", "p95", "p99")
                ],
                " s",
            )
        )
        parts.append(tag("h2", name))
        parts.append(join(charts))
    if len(data["windows"]) > charted:
        parts.append(
            tag(
                "p",
                f"{len(data['windows']) - charted} quieter services not charted; pick one above.",
                class_="muted",
            )
        )
    return page("Metric windows", base, "windows", join(parts))


def _evidence(found: dict) -> Safe:
    lines = []
    if "metric_table" in found:
        lines.append(f"window: {found['metric_table']} where {found['metric_filter']}")
    if "bronze_table" in found:
        folders = ", ".join(found["bronze_folders"])
        lines.append(f"rows: {found['bronze_table']}/{{{folders}}} where {found['bronze_filter']}")
    return tag("code", "\n".join(lines))


def anomalies_page(data: dict, base: str, kind: str | None) -> str:
    counts = ", ".join(f"{k}: {v}" for k, v in data["by_kind"].items()) or "none"
    rows = [
        [
            a["window_start"],
            a["window_end"],
            a["kind"],
            a["severity"],
            a["entity"],
            a["observed"],
            a["baseline"],
            a["threshold"],
            a["detail"],
            _evidence(a["evidence"]),
        ]
        for a in data["anomalies"]
    ]
    headers = [
        "window start",
        "window end",
        "kind",
        "severity",
        "key",
        "value",
        "baseline",
        "threshold",
        "detail",
        "where the rows are",
    ]
    parts = [
        day_form(base, "anomalies", data["day"], {"kind": kind}),
        tag(
            "p",
            f"{data['total']} anomalies ({counts}); newest first, at most "
            f"{len(data['anomalies'])} listed.",
        ),
        table(headers, rows, numeric={5, 6, 7}),
    ]
    return page("Anomalies", base, "anomalies", join(parts))


def quarantine_page(quarantine: dict, late: dict, base: str) -> str:
    parts = [
        day_form(base, "quarantine", quarantine["day"]),
        tag("h2", f"Quarantine: {quarantine['total']} records"),
        table(
            ["reason", "records"],
            [[r["reason"], r["count"]] for r in quarantine["reasons"]],
            numeric={1},
        ),
    ]
    for reason in quarantine["reasons"]:
        parts.append(tag("h3", f"{reason['reason']}: samples"))
        parts.append(
            table(
                ["topic", "partition", "offset", "Kafka time", "detail", "bytes", "raw (start)"],
                [
                    [
                        s["kafka_topic"],
                        s["kafka_partition"],
                        s["kafka_offset"],
                        s["kafka_timestamp"],
                        s["detail"],
                        s["raw_length"],
                        tag("code", s["raw"]),
                    ]
                    for s in reason["samples"]
                ],
                numeric={1, 2, 5},
            )
        )
    parts.append(tag("h2", f"Late events (event date {late['day']}): {late['total']}"))
    parts.append(
        table(
            ["service", "late events", "max lateness (ms)", "avg lateness (ms)"],
            [
                [r["service"], r["late_events"], r["max_lateness_ms"], r["avg_lateness_ms"]]
                for r in late["services"]
            ],
            numeric={1, 2, 3},
        )
    )
    return page("Quarantine & late data", base, "quarantine", join(parts))


def _file_link(base: str, target: str | None, text: str) -> Safe:
    return link(f"{base}/{target}", text) if target else tag("span", "no file", class_="muted")


def reports_page(recon: dict, latency: dict, quality: dict, base: str) -> str:
    parts = [day_form(base, "reports", recon["day"]), tag("h2", "Reconciliation")]
    if recon["summary"] is None and not recon["changed_windows"]:
        parts.append(tag("p", "no reconciliation report for this day", class_="muted"))
    else:
        parts.append(tag("p", recon["summary"] or ""))
        parts.append(_file_link(base, recon["report_file"], "JSON report"))
        parts.append(
            table(
                ["family", "change", "windows"],
                [[c["family"], c["change"], c["windows"]] for c in recon["by_family"]],
                numeric={2},
            )
        )
        parts.append(
            table(
                [
                    "family",
                    "change",
                    "window start",
                    "key",
                    "count column",
                    "streamed",
                    "reconciled",
                    "changed columns",
                ],
                [
                    [
                        c["family"],
                        c["change"],
                        c["window_start"],
                        c["entity"],
                        c["count_column"],
                        c["streamed_count"],
                        c["reconciled_count"],
                        ", ".join(c["changed_columns"] or []),
                    ]
                    for c in recon["changes"]
                ],
                numeric={5, 6},
            )
        )
    parts.append(tag("h2", "Latency report"))
    parts.append(
        join(join([_file_link(base, p["link"], p["hour"]), Safe(" ")]) for p in latency["pages"])
    )
    parts.append(
        table(
            [
                "hour",
                "scope",
                "service",
                "stage",
                "unit",
                "count",
                "p50",
                "p95",
                "p99",
                "max",
                "alert",
            ],
            [
                [
                    r["report_hour"],
                    r["scope"],
                    r["service"],
                    r["stage"],
                    r["unit"],
                    r["count"],
                    r["p50"],
                    r["p95"],
                    r["p99"],
                    r["max"],
                    r["alert_level"],
                ]
                for r in latency["rows"]
            ],
            numeric={5, 6, 7, 8, 9},
        )
    )
    parts.append(tag("h2", "Quality"))
    result = quality["result"]
    if result is None:
        parts.append(tag("p", "no quality run for this day", class_="muted"))
    else:
        verdict = "passed" if result["success"] else "FAILED"
        parts.append(
            tag(
                "p",
                join(
                    [
                        f"{verdict} (run {result['run_id']}) ",
                        _file_link(base, result["data_docs_link"], "Data Docs"),
                    ]
                ),
            )
        )
        parts.append(
            table(
                ["suite", "result", "expectations", "failures", "Data Docs"],
                [
                    [
                        s["suite"],
                        "passed" if s["success"] else "failed",
                        s["evaluated"],
                        "; ".join(
                            f"{f['expectation']} on {f['column']}: {f['observed']}"
                            for f in s["failures"]
                        ),
                        _file_link(base, s["docs_link"], "page"),
                    ]
                    for s in result["suites"]
                ],
                numeric={2},
            )
        )
    return page("Reports & quality", base, "reports", join(parts))
