"""Which :class:`~logstream.supervisor.drivers.JobDriver` runs the streaming job for these
settings: ``spark_deploy_mode`` and the scheme of ``spark_master``."""

from __future__ import annotations

from logstream.config import Settings
from logstream.errors import LogstreamError
from logstream.supervisor.drivers import JobDriver, LocalDriver, StandaloneDriver
from logstream.supervisor.yarn_k8s import KubernetesDriver, YarnDriver


def driver_for(settings: Settings) -> JobDriver:
    """The driver implementation for ``spark_deploy_mode`` and ``spark_master``."""
    mode = settings.spark_deploy_mode
    if mode not in {"client", "cluster"}:
        raise LogstreamError(f"spark_deploy_mode={mode!r}: use client or cluster")
    master = settings.spark_master
    if mode == "client" or master.startswith("local"):
        return LocalDriver()
    if master.startswith("spark://"):
        return StandaloneDriver(settings)
    if master == "yarn" or master.startswith("yarn"):
        return YarnDriver(settings)
    if master.startswith("k8s://"):
        return KubernetesDriver()
    raise LogstreamError(
        f"spark_master={master!r} has no cluster deploy mode here; use spark://, yarn or k8s://, "
        "or spark_deploy_mode=client"
    )
