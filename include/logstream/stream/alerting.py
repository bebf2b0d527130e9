"""The alerts a batch's anomalies raise (SPEC §8): one :class:`Alert` per ``anomalies`` row, except
``late_data_user``, which raises ONE alert per window naming its top users.

Late data is normal, so on a busy day thousands of users cross the late-event threshold; one
page per user would be a page storm that names no problem. The ``anomalies`` table keeps its row
per user; the alert says how many users crossed the threshold in the window and lists the
:data:`TOP_USERS` with the most late events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from logstream.alerts import Alert
from logstream.catalog.anomalies import Row

#: Users named in a grouped late-data alert (the rest are counted).
TOP_USERS = 10
#: Kinds whose entity is a service (the alert's ``service``, what receivers group by).
SERVICE_KINDS = frozenset({"response_time_zscore", "error_rate_spike"})
#: Kinds alerted once per window for all their rows.
GROUPED_KINDS = frozenset({"late_data_user"})


def anomaly_alerts(rows: Iterable[Row], anomalies_table: str) -> list[Alert]:
    """The alerts of a batch's ``anomalies`` rows, in row order (a grouped alert where its
    window first appears)."""
    alerts: list[Alert] = []
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        if row["kind"] in GROUPED_KINDS:
            key = (row["kind"], row["window_start"], row["window_end"])
            if key not in groups:
                groups[key] = []
                alerts.append(None)  # type: ignore[arg-type] - filled below, keeps the order
            groups[key].append(row)
        else:
            alerts.append(anomaly_alert(row, anomalies_table))
    grouped = iter(late_users_alert(members, anomalies_table) for members in groups.values())
    return [alert if alert is not None else next(grouped) for alert in alerts]


def _window(row: Row) -> str:
    return f"{row['window_start'].isoformat()}/{row['window_end'].isoformat()}"


def anomaly_alert(row: Row, anomalies_table: str) -> Alert:
    """The alert of an ``anomalies`` row, deduplicated by its ``anomaly_id`` and linked to the
    table (``anomalies_table``, its path) and the window."""
    return Alert(
        dedup_key=f"anomaly:{row['anomaly_id']}",
        kind=row["kind"],
        severity=row["severity"],
        summary=f"{row['kind']} {row['entity']}: {row['detail']}",
        details={k: row[k] for k in ("entity", "observed", "threshold", "baseline")},
        links={"table": anomalies_table, "window": _window(row)},
        service=str(row["entity"] or "") if row["kind"] in SERVICE_KINDS else "",
    )


def late_users_alert(rows: list[Row], anomalies_table: str, top: int = TOP_USERS) -> Alert:
    """One alert for the ``late_data_user`` rows of one window: how many users, their late
    events, and the ``top`` users by late events (ties by user id).

    Its dedup key is the row's own (``anomaly:<anomaly_id>``) for one user, else derived from
    the sorted anomaly ids, so a replayed batch raises the same key.
    """
    if len(rows) == 1:
        dedup_key = f"anomaly:{rows[0]['anomaly_id']}"
    else:
        ids = "|".join(sorted(str(row["anomaly_id"]) for row in rows))
        dedup_key = f"anomaly:late_data_user:{hashlib.sha256(ids.encode()).hexdigest()}"
    ranked = sorted(rows, key=lambda row: (-row["observed"], str(row["entity"])))
    first = rows[0]
    day = first["window_start"].date().isoformat()
    named = ", ".join(f"{row['entity']} ({row['observed']:.0f})" for row in ranked[:top])
    more = len(rows) - top
    users = "1 user" if len(rows) == 1 else f"{len(rows)} users"
    details: dict = {
        "users": len(rows),
        "late_events": int(sum(row["observed"] for row in rows)),
        "threshold": first["threshold"],
        "top_users": {str(row["entity"]): int(row["observed"]) for row in ranked[:top]},
    }
    if more > 0:
        details["users_not_listed"] = more
    return Alert(
        dedup_key=dedup_key,
        kind=first["kind"],
        severity=min((row["severity"] for row in rows), key=_severity_rank),
        summary=(
            f"late_data_user: {users} sent more than {first['threshold']:.0f} late events "
            f"on {day}; top: {named}{f' and {more} more' if more > 0 else ''}"
        ),
        details=details,
        links={"table": anomalies_table, "window": _window(first)},
    )


def _severity_rank(severity: str) -> int:
    order = ("critical", "error", "warning", "info")
    return order.index(severity) if severity in order else len(order)
