"""Fixtures of the cluster suite: one Spark standalone cluster (a master and two workers on
loopback) for the test session, and settings that submit the streaming job to it in cluster
deploy mode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from logstream.config import Settings
from logstream.runtime.cluster import LocalSparkCluster
from logstream.runtime.yarn import LocalYarn


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSparkCluster]:
    """A master and two workers (2 cores, 3 GB each) started for the session, stopped after."""
    cluster = LocalSparkCluster(tmp_path_factory.mktemp("spark-cluster"), workers=2)
    cluster.start(timeout=240)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def on_cluster(settings: Settings, spark_cluster: LocalSparkCluster, tmp_path) -> Settings:
    """Settings of one test: the job's driver on the cluster (cluster deploy mode), two
    executors of 1 core and 768 MB, its own tables, checkpoints, status files and alert file."""
    return settings.replace(
        spark_master=spark_cluster.master_url,
        spark_deploy_mode="cluster",
        spark_rest_url=spark_cluster.rest_url,
        spark_master_ui_url=spark_cluster.web_url,
        spark_driver_memory="1g",
        spark_executor_memory="768m",
        spark_executor_cores=1,
        spark_cores_max=2,
        state_dir=tmp_path / "state",
        data_root=str(tmp_path / "data"),
        checkpoint_root=str(tmp_path / "checkpoints"),
        status_dir=str(tmp_path / "status"),
        alert_sink=f"jsonl:{tmp_path / 'alerts.jsonl'}",
        metrics_port=0,
    )


@pytest.fixture(scope="session")
def local_yarn(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalYarn]:
    """A YARN ResourceManager and NodeManager (6 GB, 4 vcores) for the session, stopped after."""
    yarn = LocalYarn(settings, tmp_path_factory.mktemp("yarn"))
    yarn.start(timeout=240)
    try:
        yield yarn
    finally:
        yarn.stop()


@pytest.fixture(scope="session")
def remote_storage(settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """A local HDFS (MiniDFSCluster) and S3 (s3proxy) for the session (tests/remote_storage.py)."""
    from tests.remote_storage import remote_stores

    with remote_stores(settings, tmp_path_factory.mktemp("remote-storage")) as stores:
        yield stores


@pytest.fixture(params=["hdfs", "s3a"])
def on_cluster_remote(request, on_cluster: Settings, remote_storage, tmp_path) -> Settings:
    """:func:`on_cluster` with the tables, checkpoints and status files on HDFS or S3
    (``s3a://``): the driver writes them there, the supervisor and the test read them there.
    Only the supervisor's own state (``state_dir``) stays on the local disk."""
    root = remote_storage.root(request.param, tmp_path.name)
    return remote_storage.settings(on_cluster).replace(
        data_root=f"{root}/data",
        checkpoint_root=f"{root}/checkpoints",
        status_dir=f"{root}/status",
    )
