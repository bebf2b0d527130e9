"""Final metric windows: how the stream emits every window once, when it is final.

The ingestion query (:mod:`logstream.stream.batch`) lands each micro-batch of valid events in
bronze, stamped with ``lateness_ms`` (how far behind the high-water mark H of earlier batches the
event is). Landing a batch moves H, and with it each family group's watermark ``H - delay``. A
window is final once the watermark reaches its end: any event that could still join it is behind the
watermark, i.e. later than the delay, and is left out of the streamed metrics (it lands in
``late_events`` and waits for the nightly reconciliation).

So, after each batch, for each group, the windows ending in ``(previous watermark, watermark]``
are final (:func:`plan`). They are computed in batch with :func:`aggregate.aggregate_batch` (the
transform the nightly replay uses) over the group's on-time rows (``lateness_ms <= delay``):
:func:`final_windows`. This is the semantics of Spark's ``withWatermark`` + append mode, without a
state store: one Kafka read and one parse per record, one commit per batch.

The rows of the windows still open are kept in memory, as :class:`OpenRows` pieces: each batch
caches the columns the metrics read with its event-time range; a group reads only the pieces that
overlap its rows (:func:`covering`), and a piece is released once no open window can hold its rows
(:func:`keep_from`). A process that resumes a checkpoint reads the open rows back from bronze
once; on a new checkpoint the first batch's own rows are all of them.

Planning is pure; the caller writes the result, exactly once per batch id
(:mod:`logstream.storage.commits`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from logstream import catalog
from logstream.timeutil import interval_ms
from logstream.transforms import aggregate


@dataclass(frozen=True)
class Finalization:
    """The windows of one family group that became final in one micro-batch."""

    group: tuple[catalog.Family, ...]
    after_ms: int  # windows ending after this instant ...
    through_ms: int  # ... and at or before this one (the group's new watermark)

    @property
    def name(self) -> str:
        return aggregate.group_name(self.group)

    @property
    def rows_from_ms(self) -> int:
        """No earlier event time can be in a window that ends after ``after_ms``."""
        return self.after_ms - interval_ms(self.group[0].window)


def plan(
    groups: Iterable[tuple[catalog.Family, ...]],
    final_through: Mapping[str, int],
    high_water_ms: int | None,
    batch_min_ms: int | None,
) -> tuple[list[Finalization], dict[str, int]]:
    """Which windows each group finalizes now (only groups with a window ending in the span:
    :func:`closes_window`), and every group's watermark afterwards.

    ``final_through`` maps a group name to the watermark up to which its windows were emitted;
    ``high_water_ms`` is the largest event time landed so far (this batch included);
    ``batch_min_ms`` the smallest on-time event time of this batch. A group seen for the first
    time (a new checkpoint, or a family added by configuration) starts with the windows that hold
    this batch's events, so a fresh stream emits every window its data touched.
    """
    work: list[Finalization] = []
    through_after: dict[str, int] = dict(final_through)
    if high_water_ms is None:
        return work, through_after
    for group in groups:
        name = aggregate.group_name(group)
        through = high_water_ms - group[0].delay_ms
        after = final_through.get(name)
        if after is None:
            # first sight: start with the windows that hold this batch's rows (or, with none,
            # with the windows after the current watermark), remembered even if none is final
            after = through if batch_min_ms is None else batch_min_ms
            through_after[name] = after
        if through <= after:
            continue
        through_after[name] = through
        if closes_window(group[0], after, through):
            work.append(Finalization(group, after, through))
    return work, through_after


def closes_window(family: catalog.Family, after_ms: int, through_ms: int) -> bool:
    """Whether a window of ``family`` ends in ``(after_ms, through_ms]``: otherwise moving its
    watermark over that span finalizes nothing, and needs no Spark job.

    Windows start at every multiple of the slide (the window length when tumbling) counted from
    the epoch, so they end at ``k * slide + window``.
    """
    size = interval_ms(family.window)
    slide = interval_ms(family.slide) if family.slide else size
    return (through_ms - size) // slide > (after_ms - size) // slide


@dataclass(frozen=True)
class OpenRows:
    """Cached event rows of one landing (a micro-batch, or bronze when a process starts) that
    open windows may still need, with their event-time range (inclusive)."""

    frame: DataFrame
    lo_ms: int
    hi_ms: int
    level: int = 0  # 0: one landing; n: merged from pieces of level n - 1


def keep_from(
    groups: Iterable[tuple[catalog.Family, ...]], final_through: Mapping[str, int]
) -> int | None:
    """The earliest event time a window that is not final yet can hold (None: no group started).

    A group's next final windows end after its ``final_through``, so they start, and hold rows,
    after ``final_through - window``.
    """
    bounds = [
        final_through[name] - interval_ms(group[0].window)
        for group in groups
        if (name := aggregate.group_name(group)) in final_through
    ]
    return min(bounds) if bounds else None


def covering(pieces: Iterable[OpenRows], work: Finalization) -> list[OpenRows]:
    """The pieces that can hold rows of ``work``'s windows (event times in
    ``[work.rows_from_ms, work.through_ms)``)."""
    return [p for p in pieces if p.hi_ms >= work.rows_from_ms and p.lo_ms < work.through_ms]


def within_delay(delay_ms: int) -> Column:
    """Rows no later than ``delay_ms`` behind the high-water mark (all rows of a first batch)."""
    return F.col("lateness_ms").isNull() | (F.col("lateness_ms") <= delay_ms)


def _instant(ms: int) -> Column:
    return F.timestamp_millis(F.lit(ms))


def final_windows(events: DataFrame, work: Finalization) -> DataFrame:
    """The group's aggregates for its newly final windows (:func:`aggregate.aggregate_batch` rows).

    ``events`` is bronze (or any frame with its columns) covering at least
    ``[work.rows_from_ms, work.through_ms)``; rows later than the group's delay are left out.
    """
    delay_ms = work.group[0].delay_ms
    on_time = events.where(
        (F.col("event_time") >= _instant(work.rows_from_ms))
        & (F.col("event_time") < _instant(work.through_ms))
        & within_delay(delay_ms)
    )
    return on_time.transform(aggregate.aggregate_batch(work.group)).where(
        (F.col("window_end") > _instant(work.after_ms))
        & (F.col("window_end") <= _instant(work.through_ms))
    )
