"""The latency report as one self-contained HTML page: alert summary, statistics table and one
inline SVG bar chart per stage (no scripts, no external assets)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from logstream.batch.latency import (
    ALERTING_LEVELS,
    LEVELLED_STAGES,
    STAGE_ORDER,
    format_hour,
)
from logstream.catalog.aggregates import PERCENTILE_ACCURACY
from logstream.catalog.families.processing_latency import LEVEL_OK, LEVEL_THRESHOLDS_MS

LEVEL_COLOURS = {
    "OK": "#2e7d32",
    "INFO": "#1565c0",
    "WARNING": "#ef6c00",
    "CRITICAL": "#c62828",
    None: "#607d8b",
}
_PCT_OPACITY = {"p50": 0.45, "p95": 0.7, "p99": 1.0}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f3f3f3; }
td.text { text-align: left; }
.level { color: #fff; font-weight: 600; text-align: center; }
figure { margin: 1.5rem 0; }
figcaption { font-weight: 600; margin-bottom: 0.5rem; }
.muted { color: #666; }
.swatch { display: inline-block; width: 0.8rem; height: 0.8rem; margin: 0 0.2rem 0 0.6rem; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if unit == "records" else f"{value:,.1f}"


def _levels() -> str:
    """'CRITICAL &gt; 2000 ms, WARNING &gt; 1000, INFO &gt; 500, else OK.'"""
    bounds = [f"{name} &gt; {threshold:g}" for name, threshold in LEVEL_THRESHOLDS_MS]
    return f"{bounds[0]} ms, {', '.join(bounds[1:])}, else {LEVEL_OK}."


def render_html(hour: datetime, rows: Sequence[dict], *, generated_at: datetime, table: str) -> str:
    """A self-contained page: alert summary, statistics table and one SVG bar chart per stage.

    Every piece of text from the data (service and query names) is HTML-escaped.
    """
    start = hour.astimezone(UTC)
    title = f"Latency report {format_hour(start)} UTC"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        '<p class="muted">'
        f"Hour {_esc(start.strftime('%Y-%m-%d %H:00'))}&ndash;"
        f"{_esc((start + timedelta(hours=1)).strftime('%H:00'))} UTC · generated "
        f"{_esc(generated_at.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S'))} UTC · table "
        f"<code>{_esc(table)}</code> · percentiles by percentile_approx (accuracy "
        f"{PERCENTILE_ACCURACY:,}: rank error at most count/{PERCENTILE_ACCURACY:,}) · levels "
        f"(SPEC §5.1.8, on the average of {' and '.join(LEVELLED_STAGES)}): {_levels()}</p>",
    ]
    if not rows:
        parts.append("<p>No events and no streaming progress in this hour: nothing to report.</p>")
    else:
        parts += _alert_section(rows)
        parts += _summary_table(rows)
        parts += ["<h2>Charts</h2>", _legend()]
        for stage in STAGE_ORDER:
            stage_rows = [row for row in rows if row["stage"] == stage]
            if stage_rows:
                parts.append(
                    f'<figure id="chart-{_esc(stage)}"><figcaption>{_esc(stage)} '
                    f"(p50 / p95 / p99, {_esc(stage_rows[0]['unit'])})</figcaption>"
                    f"{bar_chart_svg(stage_rows)}</figure>"
                )
    parts.append("</body></html>")
    return "\n".join(parts)


def _alert_section(rows: Sequence[dict]) -> list[str]:
    alerting = [r for r in rows if r["scope"] == "service" and r["alert_level"] in ALERTING_LEVELS]
    parts = ["<h2>Alerts</h2>"]
    if not alerting:
        return [*parts, "<p>No service above the WARNING level.</p>"]
    parts.append("<ul>")
    for row in alerting:
        parts.append(
            f'<li><span class="level" style="background:{LEVEL_COLOURS[row["alert_level"]]}">'
            f"&nbsp;{_esc(row['alert_level'])}&nbsp;</span> {_esc(row['service'])} "
            f"{_esc(row['stage'])}: avg {_esc(_fmt(row['avg'], 'ms'))} ms, p99 "
            f"{_esc(_fmt(row['p99'], 'ms'))} ms</li>"
        )
    return [*parts, "</ul>"]


def _summary_table(rows: Sequence[dict]) -> list[str]:
    header = ("scope", "service", "stage", "unit", "count", "p50", "p95", "p99", "max", "avg")
    parts = [
        "<h2>Summary</h2>",
        '<table id="summary"><thead><tr>',
        *[f"<th>{_esc(name)}</th>" for name in (*header, "level")],
        "</tr></thead><tbody>",
    ]
    for row in rows:
        level = row.get("alert_level")
        cells = [f'<td class="text">{_esc(row[name])}</td>' for name in header[:4]]
        cells.append(f"<td>{row['count']:,}</td>")
        cells += [f"<td>{_esc(_fmt(row[name], row['unit']))}</td>" for name in header[5:]]
        cells.append(
            f'<td class="level" style="background:{LEVEL_COLOURS[level]}">{_esc(level)}</td>'
            if level
            else "<td>&ndash;</td>"
        )
        parts.append(f"<tr>{''.join(cells)}</tr>")
    return [*parts, "</tbody></table>"]


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _tick_label(value: float, step: float) -> str:
    return f"{value:,.0f}" if step >= 1 else f"{value:,.2f}"


def bar_chart_svg(rows: Sequence[dict]) -> str:
    """Grouped bars: one group per service (or query), bars p50/p95/p99 in its level's colour.

    Lighter to darker bars are p50, p95, p99; each bar's tooltip gives its value.
    """
    unit = rows[0]["unit"]
    values = [row[p] for row in rows for p in _PCT_OPACITY if row[p] is not None]
    low, high = min([0.0, *values]), max([0.0, *values])
    step = _nice_step(high - low)
    top = max(step * math.ceil(high / step), step)
    bottom = -step * math.ceil(-low / step) if low < 0 else 0.0
    bar, gap, left, plot_h, pad_top, label_h = 16, 22, 110, 180, 22, 90
    group = bar * len(_PCT_OPACITY) + gap
    width = max(360, left + group * len(rows) + 20)
    height = pad_top + plot_h + label_h

    def y(value: float) -> float:
        return pad_top + plot_h * (top - value) / (top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="11">',
        f'<text x="{left - 6}" y="{pad_top - 10}" text-anchor="end" fill="#555">'
        f"{_esc(unit)}</text>",
    ]
    for index in range(round((top - bottom) / step) + 1):
        tick = bottom + index * step
        out.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="{"#999" if abs(tick) < step / 2 else "#e5e5e5"}"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{_esc(_tick_label(tick, step))}</text>"
        )
    for index, row in enumerate(rows):
        x0 = left + index * group + gap / 2
        colour = LEVEL_COLOURS.get(row.get("alert_level"), LEVEL_COLOURS[None])
        level = f" ({row['alert_level']})" if row.get("alert_level") else ""
        service = row["service"]
        for offset, (pct, opacity) in enumerate(_PCT_OPACITY.items()):
            value = row[pct]
            if value is None:
                continue
            y_top, y_bottom = sorted((y(value), y(0.0)))
            out.append(
                f'<rect x="{x0 + offset * bar:.1f}" y="{y_top:.1f}" width="{bar - 2}" '
                f'height="{max(y_bottom - y_top, 0.5):.1f}" fill="{colour}" '
                f'fill-opacity="{opacity}"><title>'
                f"{_esc(f'{service} {pct} = {_fmt(value, unit)} {unit}{level}')}"
                "</title></rect>"
            )
        label = str(row["service"])
        label = label if len(label) <= 18 else label[:17] + "…"
        cx = x0 + bar * len(_PCT_OPACITY) / 2
        ly = pad_top + plot_h + 14
        out.append(
            f'<text x="{cx:.1f}" y="{ly}" text-anchor="end" '
            f'transform="rotate(-35 {cx:.1f} {ly})">{_esc(label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _legend() -> str:
    swatches = "".join(
        f'<span class="swatch" style="background:{colour}"></span>{_esc(level or "no level")} '
        for level, colour in LEVEL_COLOURS.items()
    )
    return (
        f'<p class="legend">Bar colour = alert level: {swatches}. In each group, lighter to '
        "darker bars are p50, p95 and p99; hover a bar for its value.</p>"
    )
