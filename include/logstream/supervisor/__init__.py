"""Supervision of the streaming job (SPEC §7.1): one instance, health, restarts, checkpoint gate.

The ``log_stream_supervisor`` DAG (a watchdog that runs every minute, then watches the job) and the
``logstream stream`` CLI call this package; nothing here depends on Airflow. One module per
question:

* :mod:`~logstream.supervisor.actions`: what the DAG tasks and the CLI call: :func:`supervise`
  (one watchdog step: start, restart with backoff, page on a restart loop), :func:`start_job`,
  :func:`stop_job`, :func:`check_checkpoints`, :func:`wait_for_progress`;
* :mod:`~logstream.supervisor.watch`: :func:`watch_job`, the poll between watchdog steps that
  restarts a dead driver within seconds (:func:`pulse` is its cheap check);
* :mod:`~logstream.supervisor.health`: :func:`inspect` -> :class:`Health` (``running`` /
  ``starting`` / ``stalled`` / ``failed`` / ``stopped`` / ``held``, with the driver log's last
  error);
* :mod:`~logstream.supervisor.policy`: restart, backoff and paging decisions (pure);
* :mod:`~logstream.supervisor.checkpoints`: the checkpoint gate; a corrupt or incompatible
  checkpoint is refused with a :class:`CheckpointError` that says which file, what is wrong and
  what the operator can do;
* :mod:`~logstream.supervisor.lag`: Kafka records the job has not committed (stall or idle?);
* :mod:`~logstream.supervisor.drivers`: where the driver runs (``spark_deploy_mode``): a local
  spark-submit process, or a driver on a standalone, YARN or Kubernetes cluster; submit, state,
  kill and find-running behind one interface;
* :mod:`~logstream.supervisor.processes`: which local processes are the job; starting and
  stopping it;
* :mod:`~logstream.supervisor.state`: the pid file, restart history, hold flag and lock;
* :mod:`~logstream.supervisor.driver_log`: the driver log's last error, and its rotation;
* :mod:`~logstream.supervisor.notices`: the alerts the supervisor sends on-call.

How "exactly one instance" holds: every decision is taken under an exclusive ``fcntl`` lock on
``<state_dir>/supervisor/lock``; the job's driver runs detached in its own session (it outlives the
Airflow task that started it) and is recorded in ``<state_dir>/supervisor/stream.pid`` (pid, the
kernel's process start time, the command). A recorded pid counts only if the process is alive, is
not a zombie, started at the recorded time (pid reuse) and its command line is this job on this
checkpoint root; a job process nobody recorded (the pid file was lost) is found by scanning the
process table and adopted instead of starting a second one. The watch's pulse only reads; it acts
through :func:`supervise` like every other caller. With ``spark_deploy_mode=cluster`` the pid file
records the cluster's id of the driver instead, its liveness is the cluster's answer (the
standalone master's REST server, YARN's ResourceManager, the driver pod), and an unrecorded
instance is one the cluster lists for this checkpoint root (its application name carries a tag of
the root), whichever host started it (:mod:`~logstream.supervisor.drivers`).

Nothing here deletes, moves or rewrites a checkpoint: a broken checkpoint stops supervision with an
alert until an operator restores it or moves it aside on purpose.

The names below are the ones the DAG, the CLI and their tests use.
"""

from __future__ import annotations

from logstream.supervisor.actions import (
    JobFailedError,
    Outcome,
    RestartLoopError,
    check_checkpoints,
    check_run,
    confirm_start,
    start_job,
    stop_job,
    supervise,
    wait_for_progress,
)
from logstream.supervisor.checkpoints import CheckpointError, validate_checkpoints
from logstream.supervisor.health import Health, inspect
from logstream.supervisor.processes import find_job_processes
from logstream.supervisor.state import read_history, read_record
from logstream.supervisor.watch import Pulse, WatchReport, pulse, watch_job

__all__ = [
    "CheckpointError",
    "Health",
    "JobFailedError",
    "Outcome",
    "Pulse",
    "RestartLoopError",
    "WatchReport",
    "check_checkpoints",
    "check_run",
    "confirm_start",
    "find_job_processes",
    "inspect",
    "pulse",
    "read_history",
    "read_record",
    "start_job",
    "stop_job",
    "supervise",
    "validate_checkpoints",
    "wait_for_progress",
    "watch_job",
]
