"""HTML building blocks of the console: escaping, the page frame, tables and SVG line charts.

Every value from data goes through :func:`esc` (``html.escape`` with quotes); only strings built
here are wrapped in :class:`Safe`. Pages carry no script: charts are inline SVG, filters are plain
GET forms, and the Content-Security-Policy the app sends forbids scripts altogether.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from urllib.parse import quote

#: The pages, in menu order: (path, title).
NAV = (
    ("health", "Pipeline health"),
    ("windows", "Metric windows"),
    ("anomalies", "Anomalies"),
    ("quarantine", "Quarantine & late data"),
    ("reports", "Reports & quality"),
)
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fafafa}
nav{background:#00375d;padding:.5rem 1rem}nav a{color:#fff;margin-right:1.2rem;text-decoration:none}
nav a.on{font-weight:bold;text-decoration:underline}main{padding:1rem 1.5rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:#eef}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:bold}.muted{color:#666}code,pre{font-size:.8rem;white-space:pre-wrap;
word-break:break-all}form{margin:.5rem 0 1rem}.chart{display:inline-block;margin:0 1rem 1rem 0}
"""


_VOID = frozenset({"input", "meta", "br"})


class Safe(str):
    """HTML built by this module from escaped parts; :func:`esc` leaves it as it is."""


def esc(value: object) -> Safe:
    """``value`` as HTML text: None as a dash, floats rounded, everything else escaped."""
    if isinstance(value, Safe):
        return value
    if value is None:
        return Safe("&ndash;")
    if isinstance(value, float):
        if math.isnan(value):
            return Safe("NaN")
        return Safe(f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else f"{value:g}")
    if isinstance(value, bool):
        return Safe("yes" if value else "no")
    if isinstance(value, int):
        return Safe(f"{value:,}")
    return Safe(html.escape(str(value), quote=True))


def join(parts: Iterable[str]) -> Safe:
    """Concatenate pieces that are each :class:`Safe` (anything else is escaped)."""
    return Safe("".join(esc(part) for part in parts))


def tag(element: str, content: object = "", /, **attributes: object) -> Safe:
    """``<element attr="...">content</element>`` with every attribute value and the content
    escaped (``class_`` -> ``class``, ``font_size`` -> ``font-size``; None drops an attribute)."""
    attrs = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{html.escape(str(value), quote=True)}"'
        for key, value in attributes.items()
        if value is not None
    )
    if element in _VOID:
        return Safe(f"<{element}{attrs}>")
    return Safe(f"<{element}{attrs}>{esc(content)}</{element}>")


def link(href: str, text: object) -> Safe:
    return tag("a", text, href=href)


def query_link(base: str, page: str, **params: object) -> str:
    """``<base>/<page>?k=v`` with each value URL-quoted (the result still goes through escaping
    as an attribute)."""
    pairs = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items() if v is not None)
    return f"{base}/{page}" + (f"?{pairs}" if pairs else "")


def table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: set[int] = frozenset()
) -> Safe:
    """A table; cells are escaped unless :class:`Safe`; columns in ``numeric`` align right."""
    head = join(tag("th", h) for h in headers)
    body = []
    for row in rows:
        cells = (
            tag("td", cell, class_="n" if index in numeric else None)
            for index, cell in enumerate(row)
        )
        body.append(tag("tr", join(cells)))
    if not body:
        body.append(tag("tr", tag("td", "nothing yet", colspan=len(headers), class_="muted")))
    return tag("table", join([tag("thead", tag("tr", head)), tag("tbody", join(body))]))


def day_form(base: str, page: str, day: str, extra: dict[str, str | None] | None = None) -> Safe:
    """A GET form choosing the day (and ``extra`` text fields) of ``page``."""
    fields = [tag("label", join(["day ", tag("input", name="day", value=day, type="date")]))]
    for name, value in (extra or {}).items():
        fields.append(tag("label", join([f" {name} ", tag("input", name=name, value=value or "")])))
    fields.append(tag("button", "show", type="submit"))
    return tag("form", join(fields), method="get", action=f"{base}/{page}")


def thin(
    data: Sequence[tuple[float, float | None]], buckets: int
) -> list[tuple[float, float | None]]:
    """At most ``buckets`` points: the largest value of each run of neighbours (spikes stay
    visible; a gap in a run is kept as a gap)."""
    if len(data) <= buckets:
        return list(data)
    size = math.ceil(len(data) / buckets)
    out: list[tuple[float, float | None]] = []
    for start in range(0, len(data), size):
        chunk = data[start : start + size]
        values = [y for _, y in chunk if y is not None and math.isfinite(y)]
        out.append((chunk[0][0], max(values) if values else None))
    return out


def _number(value: float | None) -> str:
    """A plotted value as a plain number (``-`` for a gap), for a chart's data attributes."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4g}"


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[float, float | None]]]],
    unit: str = "",
    width: int = 520,
    height: int = 170,
) -> Safe:
    """An SVG line chart of ``series`` (label, [(x, y)]); x is epoch ms, gaps (None) break lines.

    Each series is a ``<g class="series">`` whose data attributes hold its label and the points
    drawn (after :func:`thin`), so a reader or a test can get the numbers behind the lines:
    ``data-series``, ``data-x0`` (the first x), ``data-x`` (each x, in seconds after
    ``data-x0``) and ``data-y`` (each value, 4 significant digits: what a chart shows)."""
    left, right, top, bottom = 56, 8, 22, 22
    series = [(label, thin(data, (width - left - right) // 2)) for label, data in series]
    points = [(x, y) for _, data in series for x, y in data if y is not None and math.isfinite(y)]
    parts = [tag("title", title), tag("text", title, x=left, y=14, font_size=12)]
    if not points:
        parts.append(tag("text", "no data", x=left, y=height / 2, fill="#666", font_size=12))
        return tag("svg", join(parts), width=width, height=height, class_="chart", role="img")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, min(ys)), max(ys)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    parts.append(tag("line", x1=left, y1=sy(y0), x2=width - right, y2=sy(y0), stroke="#999"))
    for value in (y0, (y0 + y1) / 2, y1):
        parts.append(
            tag(
                "text",
                f"{esc(value)}{unit}",
                x=left - 4,
                y=sy(value) + 4,
                font_size=10,
                text_anchor="end",
            )
        )
    for index, (label, data) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        drawn: list[str] = []
        run: list[str] = []
        runs = []
        for x, y in data:
            if y is None or not math.isfinite(y):
                runs.append(run)
                run = []
                continue
            run.append(f"{sx(x):.1f},{sy(y):.1f}")
        runs.append(run)
        for segment in runs:
            if len(segment) == 1:
                cx, cy = segment[0].split(",")
                drawn.append(tag("circle", cx=cx, cy=cy, r=1.5, fill=colour))
            elif segment:
                drawn.append(
                    tag(
                        "polyline",
                        points=" ".join(segment),
                        fill="none",
                        stroke=colour,
                        stroke_width=1.2,
                    )
                )
        parts.append(
            tag(
                "g",
                join(drawn),
                class_="series",
                data_series=label,
                data_x0=str(int(data[0][0])) if data else None,
                data_x=" ".join(str(round((x - data[0][0]) / 1000)) for x, _ in data),
                data_y=" ".join(_number(y) for _, y in data),
            )
        )
        parts.append(
            tag("text", label, x=left + 6 + index * 90, y=height - 6, fill=colour, font_size=10)
        )
    return tag("svg", join(parts), width=width, height=height, class_="chart", role="img")


def page(title: str, base: str, active: str, body: str) -> str:
    """A whole console page: menu, title and ``body`` (which must be :class:`Safe`)."""
    if not isinstance(body, Safe):
        raise TypeError("the page body must be built from escaped parts (console.html.Safe)")
    menu = join(
        link(f"{base}/{path}", name)
        if path != active
        else tag("a", name, href=f"{base}/{path}", class_="on")
        for path, name in NAV
    )
    head = join([tag("title", f"logstream: {title}"), Safe(f"<style>{_STYLE}</style>")])
    return "<!doctype html>" + tag(
        "html",
        join(
            [
                tag("head", join([Safe('<meta charset="utf-8">'), head])),
                tag("body", join([tag("nav", menu), tag("main", join([tag("h1", title), body]))])),
            ]
        ),
        lang="en",
    )
