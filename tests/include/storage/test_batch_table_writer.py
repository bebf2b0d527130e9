"""The exactly-once table writer (logstream.storage.commits) on a real local Spark, and the
Parquet files it leaves, read back with pyarrow (an independent reader)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream import schemas
from logstream.storage.commits import BatchTableWriter

ROWS = [
    (f"logs:0:{n}", datetime(2024, 1, 15, 10, 0, n % 60, tzinfo=UTC), "INFO", n) for n in range(200)
]
SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("event_time", T.TimestampType()),
        T.StructField("level", T.StringType()),
        T.StructField("kafka_offset", T.LongType()),
    ]
)


def _committed_files(table: Path) -> list[Path]:
    files = sorted(path for path in table.rglob("*.parquet") if "_staging" not in path.parts)
    assert files, f"no Parquet file under {table}"
    return files


def _column_chunks(files: list[Path]) -> dict[str, list]:
    """The files' column chunk metadata, by column name."""
    chunks: dict[str, list] = {}
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for index in range(row_group.num_columns):
                chunk = row_group.column(index)
                chunks.setdefault(chunk.path_in_schema, []).append(chunk)
    return chunks


def test_a_batch_is_written_once_with_row_unique_columns_plain(spark, tmp_path: Path):
    table = tmp_path / "events"
    writer = BatchTableWriter(spark, str(table), "ingest-test")
    frame = spark.createDataFrame(ROWS, SCHEMA)

    assert writer.write(frame, 0) is True
    assert writer.write(frame, 0) is False  # a replayed batch leaves the table as it was
    back = spark.read.parquet(str(table))
    assert back.count() == len(ROWS)
    assert back.select("event_id").distinct().count() == len(ROWS)

    files = _committed_files(table)
    chunks = _column_chunks(files)
    assert set(schemas.DISTINCT_PER_ROW) & set(chunks) == {"event_id", "event_time", "kafka_offset"}
    for name in ("event_id", "event_time", "kafka_offset"):
        assert all(not chunk.has_dictionary_page for chunk in chunks[name]), name
    # a column outside DISTINCT_PER_ROW keeps Parquet's default dictionary encoding
    assert all(chunk.has_dictionary_page for chunk in chunks["level"])
    # timestamps are INT64 microseconds, not the legacy INT96
    assert all(chunk.physical_type == "INT64" for chunk in chunks["event_time"])
    for path in files:
        assert pq.read_schema(path).field("event_time").type == pa.timestamp("us", tz="UTC")
    first = back.agg(F.date_format(F.min("event_time"), "yyyy-MM-dd HH:mm:ss")).first()[0]
    assert first == "2024-01-15 10:00:00"
