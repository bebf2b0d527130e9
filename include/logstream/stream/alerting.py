"""The alert an anomaly raises (SPEC §8): one :class:`Alert` per ``anomalies`` row."""

from __future__ import annotations

from collections.abc import Iterable

from logstream.alerts import Alert
from logstream.catalog.anomalies import Row


def anomaly_alerts(rows: Iterable[Row], anomalies_table: str) -> list[Alert]:
    """The alerts of a batch's ``anomalies`` rows."""
    return [anomaly_alert(row, anomalies_table) for row in rows]


def anomaly_alert(row: Row, anomalies_table: str) -> Alert:
    """The alert of an ``anomalies`` row, deduplicated by its ``anomaly_id`` and linked to the
    table (``anomalies_table``, its path) and the window."""
    return Alert(
        dedup_key=f"anomaly:{row['anomaly_id']}",
        kind=row["kind"],
        severity=row["severity"],
        summary=f"{row['kind']} {row['entity']}: {row['detail']}",
        details={k: row[k] for k in ("entity", "observed", "threshold", "baseline")},
        links={
            "table": anomalies_table,
            "window": f"{row['window_start'].isoformat()}/{row['window_end'].isoformat()}",
        },
    )
