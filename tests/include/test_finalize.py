"""Which windows the stream emits after a micro-batch, and what they hold
(logstream.transforms.finalize).

Expected values are worked out by hand from the watermark rule of SPEC §6: a window is final
once high-water mark - delay reaches its end, and rows later than the delay stay out.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from logstream import catalog, schemas
from logstream.transforms import aggregate, finalize

MINUTE_GROUP = (catalog.FAMILY_BY_NAME["error_rate"],)  # 1-minute windows, 5-minute delay
FIVE_MINUTE_GROUP = (catalog.FAMILY_BY_NAME["ip_patterns"],)  # 5-minute windows, 10-minute delay


def ms(hour: int, minute: int, second: int = 0) -> int:
    return int(datetime(2026, 11, 25, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def test_nothing_is_final_before_any_event():
    work, through = finalize.plan([MINUTE_GROUP], {}, None, None)
    assert work == [] and through == {}


def test_a_fresh_stream_finalizes_the_windows_its_first_batch_touched():
    work, through = finalize.plan([MINUTE_GROUP], {}, ms(12, 10), ms(12, 0, 30))
    assert [(w.after_ms, w.through_ms) for w in work] == [(ms(12, 0, 30), ms(12, 5))]
    assert work[0].rows_from_ms == ms(11, 59, 30)  # a window ending after 12:00:30 starts later
    assert through == {"error_rate": ms(12, 5)}


def test_a_first_batch_within_the_delay_finalizes_nothing_but_remembers_where_it_started():
    work, through = finalize.plan([MINUTE_GROUP], {}, ms(12, 3), ms(12, 0))
    assert work == []
    assert through == {"error_rate": ms(12, 0)}
    # the next batch moves the watermark to 12:05: windows ending 12:01 ... 12:05 are final
    work, through = finalize.plan([MINUTE_GROUP], through, ms(12, 10), ms(12, 4))
    assert [(w.after_ms, w.through_ms) for w in work] == [(ms(12, 0), ms(12, 5))]
    assert through == {"error_rate": ms(12, 5)}


def test_a_watermark_that_does_not_move_finalizes_nothing():
    work, through = finalize.plan([MINUTE_GROUP], {"error_rate": ms(12, 5)}, ms(12, 10), ms(12, 9))
    assert work == [] and through == {"error_rate": ms(12, 5)}


def test_each_group_follows_its_own_delay():
    state = {"error_rate": ms(12, 0), "ip_patterns": ms(11, 55)}
    work, through = finalize.plan([MINUTE_GROUP, FIVE_MINUTE_GROUP], state, ms(12, 7), ms(12, 6))
    # 12:07 - 10 min = 11:57: ip_patterns' watermark moves, though no 5-minute window ends in
    # (11:55, 11:57]: nothing to compute for it
    assert [(w.name, w.after_ms, w.through_ms) for w in work] == [
        ("error_rate", ms(12, 0), ms(12, 2)),
    ]
    assert through == {"error_rate": ms(12, 2), "ip_patterns": ms(11, 57)}
    # 12:11 - 10 min = 12:01: the window ending 12:00 is final now
    work, through = finalize.plan([FIVE_MINUTE_GROUP], through, ms(12, 11), ms(12, 10))
    assert [(w.name, w.after_ms, w.through_ms) for w in work] == [
        ("ip_patterns", ms(11, 57), ms(12, 1))
    ]
    assert work[0].rows_from_ms == ms(11, 52)


def test_a_window_closes_when_its_end_is_in_the_span_the_watermark_moved_over():
    tumbling = catalog.FAMILY_BY_NAME["ip_patterns"]  # 5-minute windows, ends on 5-minute marks
    assert finalize.closes_window(tumbling, ms(11, 55), ms(12, 0))  # ends at 12:00 exactly
    assert not finalize.closes_window(tumbling, ms(12, 0), ms(12, 4, 59))
    assert not finalize.closes_window(tumbling, ms(11, 55, 1), ms(11, 59, 59))
    assert finalize.closes_window(tumbling, ms(11, 59, 59), ms(12, 0))
    # sliding: 5-minute windows every minute end on every minute mark
    sliding = replace(tumbling, slide="1 minute")
    assert finalize.closes_window(sliding, ms(12, 0, 30), ms(12, 1))
    assert not finalize.closes_window(sliding, ms(12, 1), ms(12, 1, 59))
    # a window that is not a multiple of its slide: 90 s windows every minute end at :30
    odd = replace(tumbling, window="90 seconds", slide="1 minute")
    assert finalize.closes_window(odd, ms(12, 0, 29), ms(12, 0, 30))
    assert not finalize.closes_window(odd, ms(12, 0, 30), ms(12, 1, 29))


def test_a_group_added_to_a_running_stream_without_on_time_rows_starts_at_the_watermark():
    work, through = finalize.plan([MINUTE_GROUP], {}, ms(12, 10), None)
    assert work == [] and through == {"error_rate": ms(12, 5)}


def test_rows_are_kept_from_the_earliest_start_of_a_window_not_final_yet():
    # error_rate: next windows end after 12:02, so start after 12:01; ip_patterns: after
    # 11:57 - 5 min = 11:52
    through = {"error_rate": ms(12, 2), "ip_patterns": ms(11, 57)}
    assert finalize.keep_from([MINUTE_GROUP, FIVE_MINUTE_GROUP], through) == ms(11, 52)
    assert finalize.keep_from([MINUTE_GROUP], through) == ms(12, 1)
    assert finalize.keep_from([MINUTE_GROUP], {}) is None


def test_an_item_reads_only_the_pieces_overlapping_its_rows():
    def piece(lo, hi):
        return finalize.OpenRows(frame=None, lo_ms=lo, hi_ms=hi)

    early, edge, middle, late = (
        piece(ms(11, 40), ms(11, 49)),  # ends before the rows start (11:50)
        piece(ms(11, 45), ms(11, 50)),  # its last row is the first the item needs
        piece(ms(11, 55), ms(12, 0)),
        piece(ms(11, 57), ms(12, 3)),  # starts at the item's watermark: nothing of it counts
    )
    item = finalize.Finalization(FIVE_MINUTE_GROUP, after_ms=ms(11, 55), through_ms=ms(11, 57))
    assert item.rows_from_ms == ms(11, 50)
    assert finalize.covering([early, edge, middle, late], item) == [edge, middle]


def _events(spark, rows):
    """Bronze rows from (service, event time, lateness_ms, status_code)."""
    fields = schemas.EVENTS.fieldNames()
    data = []
    for number, (service, moment, lateness, status) in enumerate(rows):
        row = dict.fromkeys(fields)
        row.update(
            event_id=f"logs:0:{number}",
            service=service,
            event_time=moment,
            lateness_ms=lateness,
            status_code=status,
            event_date=moment.date(),
            event_hour=moment.hour,
        )
        data.append(tuple(row[f] for f in fields))
    return spark.createDataFrame(data, schemas.EVENTS)


def test_final_windows_hold_on_time_rows_of_the_newly_final_windows_only(spark):
    def at(minute: int, second: int) -> datetime:
        return datetime(2026, 11, 25, 12, minute, second, tzinfo=UTC)

    events = _events(
        spark,
        [
            ("api", at(0, 10), None, 200),  # window 12:00-12:01, emitted before: left out
            ("api", at(1, 5), 1_000, 500),  # window 12:01-12:02
            ("api", at(1, 50), 2_000, 200),
            ("api", at(1, 59), 400_000, 500),  # later than the 5-minute delay: left out
            ("web", at(4, 59), 0, 404),  # window 12:04-12:05 ends at the watermark: final
            ("api", at(5, 0), 0, 200),  # window 12:05-12:06 is not final yet
        ],
    )
    item = finalize.Finalization(MINUTE_GROUP, after_ms=ms(12, 1), through_ms=ms(12, 5))
    rows = events.transform(lambda frame: finalize.final_windows(frame, item)).collect()
    got = sorted(
        (row["window_start"].replace(tzinfo=UTC), row["service"], row["n"], row["errors"])
        for row in rows
    )
    assert got == [(at(1, 0), "api", 2, 1), (at(4, 0), "web", 1, 1)]


def test_the_open_rows_hold_every_column_the_metrics_read(spark):
    """The stream aggregates from a narrow projection (``aggregate.input_columns``): each group's
    final windows must resolve over it to the same columns as over full bronze."""
    groups = aggregate.group_families(catalog.FAMILIES)
    for source, schema in (("events", schemas.EVENTS), ("user_events", schemas.USER_EVENTS)):
        mine = [group for group in groups if group[0].source == source]
        full = spark.createDataFrame([], schema)
        narrow = full.select(*aggregate.input_columns(mine), "lateness_ms")
        assert len(narrow.columns) < len(full.columns)
        for group in mine:
            item = finalize.Finalization(group, after_ms=0, through_ms=60_000)
            assert (
                finalize.final_windows(narrow, item).schema
                == finalize.final_windows(full, item).schema
            ), aggregate.group_name(group)
