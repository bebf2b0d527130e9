"""What ingestion carries between micro-batches (logstream.stream.state): the durable state per
batch id and the in-memory open rows (the late-data users' counters: test_late_users.py).

Restoring the open rows from bronze and the histories from the committed tables is driven
through the handler in test_batch.py (the restart step).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from logstream import catalog
from logstream.catalog import anomalies
from logstream.storage.fs import HadoopFS
from logstream.stream.state import STATE_VERSIONS_KEPT, BatchMemory, IngestState
from logstream.transforms.finalize import OpenRows, keep_from

MINUTE = 60_000


@pytest.fixture
def fs(spark) -> HadoopFS:
    return HadoopFS(spark)


def test_a_batch_loads_the_state_of_the_latest_batch_before_it(fs, tmp_path):
    folder = str(tmp_path / "state")
    IngestState(max_event_time_ms=3).save(fs, folder, 3)
    IngestState(max_event_time_ms=5, first_on_time_ms=2).save(fs, folder, 5)
    assert IngestState.load(fs, folder, 0) == IngestState()
    assert IngestState.load(fs, folder, 4).max_event_time_ms == 3
    assert IngestState.load(fs, folder, 5).max_event_time_ms == 3  # a replay of 5 sees 3
    assert IngestState.load(fs, folder, 9) == IngestState(
        max_event_time_ms=5,
        totals={"valid": 0, "quarantined": 0, "late": 0},
        late_users={},
        first_on_time_ms=2,
    )


def test_a_state_written_before_the_finalizer_log_still_loads(fs, tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    # the shape of an older checkpoint: the groups' watermarks lived here, a key is unknown now
    (folder / "4.json").write_text(
        '{"max_event_time_ms": 9, "totals": {"valid": 1, "quarantined": 0, "late": 0},'
        ' "late_users": {}, "final_through": {"error_rate": 7}, "retired_key": 1}'
    )
    loaded = IngestState.load(fs, str(folder), 5)
    assert loaded.max_event_time_ms == 9 and loaded.final_through == {"error_rate": 7}


def test_saving_keeps_the_latest_versions_only(fs, tmp_path):
    folder = tmp_path / "state"
    for batch_id in (0, 1, 9, 10, 11):
        IngestState().save(fs, str(folder), batch_id)
    IngestState().save(fs, str(folder), 10 + STATE_VERSIONS_KEPT)
    assert sorted(p.name for p in folder.glob("*.json")) == ["10.json", "11.json", "60.json"]


def memory(spark, settings) -> BatchMemory:
    groups = [(catalog.FAMILY_BY_NAME["error_rate"],)]  # 1-minute windows, 5-minute delay
    return BatchMemory(spark, settings, "events", groups, anomalies.Thresholds())


def piece(spark, lo_ms: int, hi_ms: int) -> OpenRows:
    frame = spark.createDataFrame([(lo_ms,)], "t long").persist()
    return OpenRows(frame, lo_ms, hi_ms)


def test_the_memory_holds_the_columns_the_metrics_read(spark, settings):
    assert memory(spark, settings).columns == [
        "event_time",
        "service",
        "status_code",
        "lateness_ms",
    ]


def test_the_memory_continues_only_the_batch_it_landed(spark, settings):
    kept = memory(spark, settings)
    assert not kept.continues(0)  # a new process
    kept.add(None, 4)
    assert kept.continues(5)
    assert not kept.continues(4)  # a replay
    assert not kept.continues(7)
    kept.forget()
    assert not kept.continues(5)


def test_releasing_drops_the_rows_no_open_window_can_hold(spark, settings):
    kept = memory(spark, settings)
    old, edge = piece(spark, 0, 8 * MINUTE), piece(spark, 0, 9 * MINUTE)
    new = piece(spark, 9 * MINUTE, 12 * MINUTE)
    for batch_id, each in enumerate((old, edge, new)):
        kept.add(each, batch_id)
    # error_rate is final through 10:00 (ms 10 min): its open windows start at 9 min or later
    kept.release(keep_from(kept.groups, {"error_rate": 10 * MINUTE}))
    assert kept.pieces == [edge, new]
    assert not old.frame.is_cached
    assert edge.frame.is_cached and new.frame.is_cached
    kept.forget()
    assert kept.pieces == [] and not edge.frame.is_cached and not new.frame.is_cached


def test_a_new_process_restores_every_row_landed_before_it_once(spark, settings, tmp_path):
    """Rows of the batches before the process (processing time before its first batch's), up
    to the high-water mark they reached, even when the first round (planned by an earlier
    process) finalizes through less; never the rows of the process's own batches."""
    run = settings.replace(data_root=str(tmp_path / "data"))
    day = datetime(2026, 3, 2, tzinfo=UTC)

    def at(minute: int, second: int = 0) -> datetime:
        return day.replace(hour=10, minute=minute, second=second)

    rows = [  # event time, processing time (batch), lateness
        (at(0, 10), at(0, 30), None),
        (at(0, 50), at(1, 0), 5_000),  # landed after the round's high-water mark (10:00:40)
        (at(1, 5), at(1, 30), 1_000),  # landed by the new process's own first batch: not read
        (at(0, 20), at(1, 0), 9 * MINUTE),  # later than every delay: no metric reads it
    ]
    frame = spark.createDataFrame(
        [(t, "api", 200, late, p, t.date(), t.hour) for t, p, late in rows],
        "event_time timestamp, service string, status_code int, lateness_ms long, "
        "processing_time timestamp, event_date date, event_hour int",
    )
    frame.write.partitionBy("event_date", "event_hour").parquet(f"{run.data_root}/events")
    kept = memory(spark, run)  # error_rate: 1-minute windows, 5-minute delay
    kept.begin(int(at(1, 30).timestamp() * 1000), int(at(0, 50).timestamp() * 1000))
    # a round planned by the earlier process through 10:00:40 - 5 min: nothing final yet
    kept.restore([], {"error_rate": int(at(0, 0).timestamp() * 1000) - 5 * MINUTE})
    restored = sorted(r["event_time"] for r in kept.pieces[0].frame.collect())
    assert restored == [at(0, 10).replace(tzinfo=None), at(0, 50).replace(tzinfo=None)]
    kept.restore([], {})  # once per process
    assert len(kept.pieces) == 1
    kept.forget()


def test_compacting_merges_the_oldest_pieces_level_by_level_with_every_row(spark, settings):
    kept = memory(spark, settings)
    pieces = [piece(spark, n * MINUTE, n * MINUTE + 30_000) for n in range(7)]
    for batch_id, each in enumerate(pieces[:5]):
        kept.add(each, batch_id)
    kept.compact(fan_in=3)  # 5 landings' pieces: fewer than 2 x 3, unchanged
    assert kept.pieces == pieces[:5]
    kept.add(pieces[5], 5)
    kept.compact(fan_in=3)  # 6: the oldest 3 merge into one of level 1
    merged, *newest = kept.pieces
    assert newest == pieces[3:6]
    assert (merged.lo_ms, merged.hi_ms, merged.level) == (0, 2 * MINUTE + 30_000, 1)
    assert sorted(r["t"] for r in merged.frame.collect()) == [0, MINUTE, 2 * MINUTE]
    assert merged.frame.is_cached and not any(p.frame.is_cached for p in pieces[:3])
    kept.forget()
