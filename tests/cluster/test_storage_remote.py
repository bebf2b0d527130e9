"""Shared storage that is not the local disk, against real servers: a MiniDFSCluster (HDFS) and
s3proxy (S3), the cluster suite's. The Python-side :class:`Storage` and Spark
(``hdfs://`` through pyspark's Hadoop client, ``s3a://`` through hadoop-aws) read and write both,
and each side reads what the other wrote."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import types as T

from logstream.config import Settings
from logstream.runtime.spark import build_spark_session
from logstream.storage.fs import HadoopFS, Storage
from tests.remote_storage import RemoteStores

# make test-cluster; make test covers S3 through tests/integration/test_console_remote.py
pytestmark = pytest.mark.cluster

KINDS = ("hdfs", "s3a")


@pytest.fixture(scope="module")
def stores(remote_storage: RemoteStores) -> RemoteStores:
    """The session's stores (tests/cluster/conftest.py): one s3a endpoint per Spark session, as
    Hadoop caches the s3a file system of a bucket with the endpoint it was first opened with."""
    return remote_storage


@pytest.fixture(scope="module")
def remote_settings(settings: Settings, stores: RemoteStores) -> Settings:
    return stores.settings(settings)


@pytest.mark.parametrize("kind", KINDS)
def test_python_side_round_trip(stores: RemoteStores, remote_settings: Settings, kind: str):
    storage = Storage(remote_settings)
    root = stores.root(kind, "python-side")
    first, second = f"{root}/status/ingest.json", f"{root}/status/history/day.jsonl"
    assert storage.read_text(first) is None and storage.list_names(root) == []
    storage.write_text(first, '{"batch": 1}')
    storage.write_text(first, '{"batch": 2}')  # replaced in place
    storage.write_text(second, "line\n")
    assert storage.read_text(first) == '{"batch": 2}'
    assert storage.list_names(f"{root}/status") == ["history", "ingest.json"]
    assert storage.list_files(root, ".json") == [first]
    assert storage.list_files(root) == [second, first]
    storage.rename(first, f"{root}/moved/ingest.json")
    assert not storage.exists(first)
    assert storage.read_text(f"{root}/moved/ingest.json") == '{"batch": 2}'
    assert [entry.size for entry in storage.walk(f"{root}/moved")] == [len('{"batch": 2}')]
    storage.delete(f"{root}/status")
    assert storage.list_files(root) == [f"{root}/moved/ingest.json"]
    storage.delete(root)
    assert storage.list_files(root) == []


def test_s3_refuses_wrong_credentials(stores: RemoteStores, remote_settings: Settings, tmp_path):
    wrong = tmp_path / "credentials"
    wrong.write_text("[default]\naws_access_key_id = intruder\naws_secret_access_key = guess\n")
    storage = Storage(remote_settings.replace(s3_credentials_file=str(wrong)))
    with pytest.raises(PermissionError):
        storage.write_text(stores.root("s3a", "denied/x.json"), "{}")


ROWS = [
    ("web", dt.date(2026, 1, 2), 3, 0.25),
    ("api", dt.date(2026, 1, 2), 5, 1.5),
    ("web", dt.date(2026, 1, 3), 7, None),
]
SCHEMA = T.StructType(
    [
        T.StructField("service", T.StringType()),
        T.StructField("event_date", T.DateType()),
        T.StructField("requests", T.LongType()),
        T.StructField("latency", T.DoubleType()),
    ]
)


@pytest.mark.parametrize("kind", KINDS)
def test_spark_parquet_round_trip(stores: RemoteStores, remote_settings: Settings, kind: str):
    spark = build_spark_session("storage-remote", remote_settings)
    root = stores.root(kind, "spark")
    table = f"{root}/requests"
    (
        spark.createDataFrame(ROWS, SCHEMA)
        .coalesce(1)
        .write.mode("overwrite")
        .partitionBy("event_date")
        .parquet(table)
    )
    back = spark.read.schema(SCHEMA).parquet(table).select(*SCHEMA.fieldNames())
    assert sorted(tuple(row) for row in back.collect()) == sorted(
        (service, day, requests, latency) for service, day, requests, latency in ROWS
    )
    # the Python side sees the files Spark wrote, and Spark reads what Python wrote
    storage = Storage(remote_settings)
    parquet = storage.list_files(table, ".parquet")
    assert [path.split("/")[-2] for path in parquet] == [
        "event_date=2026-01-02",
        "event_date=2026-01-03",
    ]
    storage.write_text(f"{root}/marker.json", '{"from": "python"}')
    assert HadoopFS(spark).read_text(f"{root}/marker.json") == '{"from": "python"}'
    HadoopFS(spark).write_text(f"{root}/reply.json", '{"from": "spark"}')
    assert storage.read_text(f"{root}/reply.json") == '{"from": "spark"}'


@pytest.mark.parametrize("kind", KINDS)
def test_pyarrow_reads_the_parquet_spark_wrote(stores: RemoteStores, remote_settings, kind):
    """What the console does: list a table's files from Python and read them with pyarrow."""
    import pyarrow.parquet as pq

    storage = Storage(remote_settings)
    files = storage.list_files(f"{stores.root(kind, 'spark')}/requests", ".parquet")
    assert files, "test_spark_parquet_round_trip writes the table first"
    filesystem, _ = storage.arrow_filesystem(files[0])
    paths = [storage.arrow_filesystem(path)[1] for path in files]
    table = pq.read_table(paths, filesystem=filesystem)
    assert sorted(table.column("requests").to_pylist()) == sorted(row[2] for row in ROWS)
