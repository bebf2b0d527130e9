"""What the console keeps of what it read: the disk copies that make the first view after a
restart cheap, and the listings reused while no folder changed. Expected rows are the values
written here."""

from __future__ import annotations

import os
from datetime import date

import pyarrow as pa
import pytest

from logstream.config import Settings
from logstream.console import tables
from tests.include.console.conftest import write

DAY = date(2026, 12, 3)


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setattr(tables, "PERSIST_AFTER_FILES", 2)
    tables.CACHE.clear()
    yield Settings.load(env={}, state_dir=tmp_path)
    tables.CACHE.clear()


def _late(settings: Settings, name: str, services: list[str], lateness: list[int]) -> None:
    write(
        tables.day_folder(settings, "late_events", DAY),
        {"service": (pa.string(), services), "lateness_ms": (pa.int64(), lateness)},
        name,
    )


def _read(settings: Settings) -> list[tuple[str, int]]:
    table = tables.read_day(settings, "late_events", DAY, ("service", "lateness_ms"))
    return sorted(zip(table["service"].to_pylist(), table["lateness_ms"].to_pylist(), strict=True))


@pytest.fixture
def files_read(monkeypatch) -> list[str]:
    read: list[str] = []
    original = tables._read_file

    def recording(path: str, *args) -> pa.Table:
        read.append(os.path.basename(path))
        return original(path, *args)

    monkeypatch.setattr(tables, "_read_file", recording)
    return read


def test_after_a_restart_only_new_files_are_read(settings, files_read):
    _late(settings, "b-1", ["api"], [10])
    _late(settings, "b-2", ["web", "api"], [20, 30])
    assert _read(settings) == [("api", 10), ("api", 30), ("web", 20)]
    assert sorted(files_read) == ["b-1.parquet", "b-2.parquet"]
    copies = list(tables.cache_folder(settings).glob("*.arrow"))
    assert len(copies) == 1  # two files read >= PERSIST_AFTER_FILES

    tables.CACHE.clear()  # as a new API server process
    files_read.clear()
    _late(settings, "b-3", ["db"], [40])
    assert _read(settings) == [("api", 10), ("api", 30), ("db", 40), ("web", 20)]
    assert files_read == ["b-3.parquet"]  # b-1 and b-2 came from the disk copy


def test_a_republished_file_is_read_again(settings, files_read):
    _late(settings, "b-1", ["api"], [10])
    _late(settings, "b-2", ["web"], [20])
    assert _read(settings) == [("api", 10), ("web", 20)]
    folder = tables.day_folder(settings, "late_events", DAY)
    # replaced by a rename, as the publisher does
    write(folder / "_staging", {"service": (pa.string(), ["db"]), "lateness_ms": (pa.int64(), [5])})
    os.replace(folder / "_staging" / "part-0.parquet", folder / "b-2.parquet")
    assert _read(settings) == [("api", 10), ("db", 5)]
    tables.CACHE.clear()
    assert _read(settings) == [("api", 10), ("db", 5)]  # the disk copy is stale: not used


def test_an_unreadable_disk_copy_is_ignored(settings):
    _late(settings, "b-1", ["api"], [10])
    _late(settings, "b-2", ["web"], [20])
    _read(settings)
    for copy in tables.cache_folder(settings).glob("*.arrow"):
        copy.write_bytes(b"not arrow")
    tables.CACHE.clear()
    assert _read(settings) == [("api", 10), ("web", 20)]


def test_a_new_file_is_seen_at_once(settings):
    _late(settings, "b-1", ["api"], [10])
    assert _read(settings) == [("api", 10)]
    assert _read(settings) == [("api", 10)]  # the listing reused
    _late(settings, "b-2", ["web"], [20])
    assert _read(settings) == [("api", 10), ("web", 20)]
    os.unlink(tables.day_folder(settings, "late_events", DAY) / "b-1.parquet")
    assert _read(settings) == [("web", 20)]


def test_files_from_before_a_column_existed_or_with_narrower_types(settings):
    _late(settings, "b-1", ["api"], [10])
    write(
        tables.day_folder(settings, "late_events", DAY),
        {"service": (pa.string(), ["web"]), "lateness_ms": (pa.int32(), [7])},
        "b-2",
    )
    write(
        tables.day_folder(settings, "late_events", DAY), {"service": (pa.string(), ["db"])}, "b-3"
    )
    table = tables.read_day(settings, "late_events", DAY, ("service", "lateness_ms"))
    assert table.schema == tables.schema_of(("service", "lateness_ms"))
    rows = sorted(zip(table["service"].to_pylist(), table["lateness_ms"].to_pylist(), strict=True))
    assert rows == [("api", 10), ("db", None), ("web", 7)]


def test_the_disk_copies_are_private(settings):
    _late(settings, "b-1", ["api"], [10])
    _late(settings, "b-2", ["web"], [20])
    _read(settings)
    assert tables.cache_folder(settings).stat().st_mode & 0o077 == 0


def test_after_a_restart_an_unchanged_folder_is_not_listed_file_by_file(
    settings, files_read, monkeypatch
):
    _late(settings, "b-1", ["api"], [10])
    _late(settings, "b-2", ["web"], [20])
    _read(settings)
    tables.CACHE.clear()
    files_read.clear()
    statted: list[str] = []
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        statted.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    assert _read(settings) == [("api", 10), ("web", 20)]
    assert files_read == []  # the rows came from the disk copy ...
    assert not [p for p in statted if p.endswith(".parquet")]  # ... and so did the listing
