"""The anomaly rules (SPEC §5.2) run on a family's newly final windows, as ``anomalies`` rows.

A filter rule is a Spark filter over the new windows; only its matches reach the driver. The
look-back rules collect the new windows (one row per service and window) and compare them, in
plain Python, with each key's earlier windows, which a :class:`anomalies.KeyHistory` per rule
keeps between micro-batches (:class:`logstream.stream.state.BatchMemory`).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from logstream import catalog
from logstream.catalog import anomalies
from logstream.timeutil import from_ms


def window_rows(frame: DataFrame, columns: list[Column]) -> list[anomalies.Row]:
    """Collect windows: ``columns`` and the bounds as aware UTC datetimes (``collect`` would give
    naive ones in the driver's local time zone)."""
    bounds = [
        F.unix_millis("window_start").alias("_start"),
        F.unix_millis("window_end").alias("_end"),
    ]
    rows = []
    for row in frame.select(*bounds, *columns).collect():
        values = row.asDict()
        values["window_start"] = from_ms(values.pop("_start"))
        values["window_end"] = from_ms(values.pop("_end"))
        rows.append(values)
    return rows


def detect(
    family: catalog.Family,
    new_windows: DataFrame,
    thresholds: anomalies.Thresholds,
    histories: Mapping[str, anomalies.KeyHistory],
) -> list[anomalies.Row]:
    """The anomalies among ``family``'s new windows (its table rows). ``histories`` holds the
    history of each look-back rule of the family, by kind; the new windows join it."""
    found: list[anomalies.Row] = []
    for rule in anomalies.FILTER_RULES:
        if rule.family == family.name:
            matched = new_windows.where(rule.where(thresholds))
            columns = [column().alias(name) for name, column in rule.columns.items()]
            found += [rule.shape(thresholds, w) for w in window_rows(matched, columns)]
    rules = [rule for rule in anomalies.HISTORY_RULES if rule.family == family.name]
    if rules:
        names = dict.fromkeys(name for rule in rules for name in (rule.key, *rule.columns))
        windows = window_rows(new_windows, [F.col(name) for name in names])
        for rule in rules:
            found += histories[rule.kind].detect(windows)
    return found
