"""Every server the cluster suite starts listens on loopback only: the Spark master and workers,
the YARN ResourceManager and NodeManager, the HDFS NameNode and DataNode, and s3proxy."""

from __future__ import annotations

import psutil
import pytest

pytestmark = pytest.mark.cluster

LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on."""
    return [
        (connection.laddr.ip, connection.laddr.port)
        for connection in psutil.Process(pid).net_connections("tcp")
        if connection.status == psutil.CONN_LISTEN
    ]


def assert_loopback_only(name: str, pid: int | None, at_least: int) -> None:
    assert pid is not None, f"{name} is not running"
    sockets = listening(pid)
    assert len(sockets) >= at_least, (name, sockets)
    assert all(ip in LOOPBACK for ip, _ in sockets), (name, sockets)


def test_the_spark_cluster_listens_on_loopback_only(spark_cluster):
    # the master: RPC, web UI, REST server; a worker: RPC, web UI
    assert_loopback_only("the Spark master", spark_cluster.master.pid(), 3)
    for index, worker in enumerate(spark_cluster.workers, 1):
        assert_loopback_only(f"Spark worker {index}", worker.pid(), 2)


def test_yarn_listens_on_loopback_only(local_yarn):
    status = local_yarn.status()
    assert status.running and status.nodes == 1, status
    # the ResourceManager: client, scheduler, tracker, admin RPC and web; the NodeManager: RPC,
    # localizer, web
    assert_loopback_only("the ResourceManager", local_yarn.resource_manager.pid(), 5)
    assert_loopback_only("the NodeManager", local_yarn.node_manager.pid(), 3)


def test_hdfs_and_s3_listen_on_loopback_only(remote_storage):
    assert_loopback_only("the local HDFS", remote_storage.hdfs.pid(), 4)
    assert_loopback_only("s3proxy", remote_storage.s3.pid(), 1)
