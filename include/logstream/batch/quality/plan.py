"""What one quality run checks: the day, the suites and the run-time parameter values.

:func:`plan_run` is the Airflow side (which day and suite selection a ``data_quality`` run
hands to the job); :func:`resolve_suites` and :func:`expectation_parameters` turn that selection
and the day into suite names and ``$PARAMETER`` values in the job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from logstream.batch.quality.checks import suite_groups
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.timeutil import as_utc

#: How far back the newest row of a fresh table may be (the ``freshness_minutes`` parameter).
DEFAULT_FRESHNESS_MINUTES = 60


def plan_run(
    run_type: str,
    logical_date: datetime | None,
    requested_date: str = "",
    requested_suites: str = "",
    asset_extras: Sequence[Mapping[str, Any]] = (),
) -> dict[str, str]:
    """The day and suites for one ``data_quality`` run.

    * a date given in the run's params wins;
    * a scheduled (hourly) or backfilled run checks the streamed tables of its UTC day;
    * a run triggered by reconciliation checks everything for the day named in the asset event's
      extra (``date``, or the last of ``dates``/``days``), else the previous UTC day; when the
      reconciliation came from a backfill (``origin: backfill``) only the reconciled tables are
      checked: the streamed tables never held those archived days;
    * a manual run checks everything for the previous UTC day.
    """
    now = as_utc(logical_date or datetime.now(UTC))
    scheduled = run_type in {"scheduled", "backfill"}  # cron ticks, live or replayed
    day = now.date() if scheduled else now.date() - timedelta(days=1)
    if run_type == "asset_triggered":
        for extra in asset_extras:
            named = extra.get("date") or (extra.get("dates") or extra.get("days") or [None])[-1]
            if named:
                day = date.fromisoformat(str(named))
    if requested_date:
        try:
            day = date.fromisoformat(requested_date.strip())
        except ValueError:
            raise ConfigError(
                f"date={requested_date!r} is not a date; write YYYY-MM-DD or leave it empty"
            ) from None
    backfilled = run_type == "asset_triggered" and any(
        extra.get("origin") == "backfill" for extra in asset_extras
    )
    default = "streamed" if scheduled else "reconciled" if backfilled else "all"
    suites = requested_suites.strip() or default
    return {"date": day.isoformat(), "suites": suites}


def resolve_suites(settings: Settings, selection: str | Iterable[str] | None) -> list[str]:
    """Suite names from group names and/or suite names (comma-separated or a list), in catalogue
    order; ``None`` or empty means ``all``. Unknown names raise ConfigError listing the known."""
    if isinstance(selection, str):
        selection = [part.strip() for part in selection.split(",")]
    wanted = [name for name in (selection or []) if name] or ["all"]
    groups = suite_groups(settings)
    known = groups["all"]
    chosen: set[str] = set()
    for name in wanted:
        if name in groups:
            chosen.update(groups[name])
        elif name in known:
            chosen.add(name)
        else:
            raise ConfigError(
                f"unknown quality suite {name!r}; use a group ({', '.join(groups)}) "
                f"or suite names: {', '.join(known)}"
            )
    return [name for name in known if name in chosen]


def expectation_parameters(
    day: date, overrides: Mapping[str, str] | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The ``$PARAMETER`` values of one run.

    ``day_start``/``day_end`` bound the day (UTC). ``fresh_since`` (override: an ISO-8601 time,
    UTC if no offset) defaults to ``min(now, day_end) - freshness_minutes`` (override: an
    integer, default :data:`DEFAULT_FRESHNESS_MINUTES`): the newest row of a fresh table must be
    at most that old, or, for a finished day, that close to its end.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {"fresh_since", "freshness_minutes"})
    if unknown:
        raise ConfigError(
            f"unknown quality parameter(s) {', '.join(unknown)}; "
            "known: fresh_since (ISO-8601 time), freshness_minutes (integer)"
        )
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    try:
        minutes = int(overrides.get("freshness_minutes", DEFAULT_FRESHNESS_MINUTES))
    except ValueError:
        raise ConfigError(
            f"freshness_minutes={overrides['freshness_minutes']!r} is not a whole number"
        ) from None
    if "fresh_since" in overrides:
        try:
            fresh_since = as_utc(datetime.fromisoformat(str(overrides["fresh_since"])))
        except ValueError:
            raise ConfigError(
                f"fresh_since={overrides['fresh_since']!r} is not an ISO-8601 time; "
                "write e.g. 2026-01-14T23:00:00+00:00"
            ) from None
    else:
        anchor = min(as_utc(now or datetime.now(UTC)), end)
        fresh_since = anchor - timedelta(minutes=minutes)
    return {"day_start": start, "day_end": end, "fresh_since": fresh_since}
