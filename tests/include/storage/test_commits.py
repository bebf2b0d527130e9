"""The two publication protocols on a real local Spark: a day partition swapped in whole, and a
multi-table commit that an interrupted attempt cannot leave half done."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

from logstream.storage.commits import DayPublisher, TableCommits
from logstream.storage.fs import HadoopFS

D = date(2026, 11, 25)


def parquet_files(folder: Path) -> list[str]:
    """The Parquet files a reader of ``folder`` sees (it skips ``_``-prefixed folders)."""
    found = [p.relative_to(folder) for p in folder.rglob("*.parquet")]
    return sorted(str(p) for p in found if not any(part.startswith("_") for part in p.parts))


def test_publisher_swaps_a_day_partition_and_leaves_nothing_behind(spark, settings, tmp_path):
    local = settings.replace(data_root=str(tmp_path / "data"))
    publisher = DayPublisher(spark, local, D, "reconciled")
    partition = f"window_date={D}"
    table = tmp_path / "data" / "reconciled" / "error_rate"
    for version in (1, 2):
        frame = spark.createDataFrame([(version,)], "version int").coalesce(1)
        ready = publisher.stage(frame, "reconciled/error_rate", partition)
        assert not (table / partition).exists() or version == 2
        published = publisher.publish(ready, "reconciled/error_rate", partition)
        assert published.endswith(f"reconciled/error_rate/{partition}")
        files = sorted(p.name for p in (table / partition).iterdir() if p.suffix == ".parquet")
        assert files == ["part-00000.parquet"]
        got = spark.read.parquet(str(table / partition)).collect()
        assert [r["version"] for r in got] == [version]
    publisher.reset()
    assert not (tmp_path / "data" / "reconciled" / "_staging" / D.isoformat()).exists()
    assert HadoopFS(spark).list_names(str(table)) == [partition]


def test_a_commit_moves_every_table_s_files_and_writes_its_record(spark, settings, tmp_path):
    local = settings.replace(data_root=str(tmp_path / "data"))
    commits = TableCommits(spark, local, ("events", "quarantine"), "w")
    assert commits.recover() == []

    events = spark.createDataFrame([(1, "a"), (2, "b")], "n int, part string").coalesce(1)
    rejected = spark.createDataFrame([(3,)], "n int").coalesce(1)
    commits.stage("events", "c1", events, ["part"])
    commits.stage("quarantine", "c1", rejected, [])
    staging = tmp_path / "data" / "events" / "_staging" / "w" / "c1"
    assert len(list(staging.rglob("*.parquet"))) == 2
    assert parquet_files(tmp_path / "data" / "events") == []  # staged files are hidden
    assert commits.commit("c1", {"commit": "c1", "units": 2}) == 3

    data = tmp_path / "data"
    # numbered per table in staged-path order, in the staged partition folders
    assert parquet_files(data / "events") == [
        "part=a/w-c1-00000.parquet",
        "part=b/w-c1-00001.parquet",
    ]
    assert parquet_files(data / "quarantine") == ["w-c1-00000.parquet"]
    assert sorted(row["n"] for row in spark.read.parquet(str(data / "events")).collect()) == [1, 2]
    done = data / "events" / "_commits" / "w"
    assert sorted(p.name for p in done.iterdir() if not p.name.startswith(".")) == ["c1.done"]
    assert json.loads((done / "c1.done").read_text()) == {"commit": "c1", "units": 2}
    assert not (data / "events" / "_staging" / "w" / "c1").exists()
    assert commits.recover() == [{"commit": "c1", "units": 2}]


def test_recover_rolls_back_an_attempt_without_its_record(spark, settings, tmp_path):
    local = settings.replace(data_root=str(tmp_path / "data"))
    commits = TableCommits(spark, local, ("events", "quarantine"), "w")
    frame = spark.createDataFrame([(1, "a")], "n int, part string").coalesce(1)
    commits.stage("events", "c1", frame, ["part"])
    commits.commit("c1", {"commit": "c1"})

    # an attempt c2 that moved one file and died before its .done; its staging is still there
    data = tmp_path / "data" / "events"
    moved = data / "part=a" / "w-c2-00000.parquet"
    shutil.copy(data / "part=a" / "w-c1-00000.parquet", moved)
    commits.stage("events", "c2", frame, ["part"])
    HadoopFS(spark).write_text(
        str(data / "_commits" / "w" / "c2.manifest"), json.dumps([str(moved)])
    )

    assert commits.recover() == [{"commit": "c1"}]
    assert parquet_files(data) == ["part=a/w-c1-00000.parquet"]
    assert not (data / "_commits" / "w" / "c2.manifest").exists()
    assert not (data / "_staging" / "w").exists()
