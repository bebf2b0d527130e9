"""Every job in jobs/ reads its settings from the command line: the ``--set`` arguments a DAG
passes (`settings_arguments`) give the job exactly the DAG task's settings, whatever environment
the job itself runs in."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from logstream.config import Settings, settings_arguments, settings_from_arguments

JOBS = Path(__file__).resolve().parents[2] / "jobs"
#: the arguments each job requires besides its settings
REQUIRED = {
    "backfill_files": ["--path", "/archive/*.log"],
    "environment_check": [],
    "latency_report": ["--hour", "2026-11-25T13"],
    "quality_check": ["--date", "2026-01-14"],
    "reconcile_day": ["--date", "2026-11-25"],
    "stream_logs": [],
}


def load_job(name: str):
    spec = importlib.util.spec_from_file_location(name, JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_job_is_listed():
    assert {path.stem for path in JOBS.glob("*.py")} == set(REQUIRED)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_a_job_gets_the_submitters_settings_not_its_environment(name, tmp_path, monkeypatch):
    submitter = Settings.load(
        env={},
        state_dir=tmp_path / "worker",
        data_root="s3a://lake/logstream",
        reports_dir=str(tmp_path / "shared-reports"),
        kafka_bootstrap_servers="kafka-1:9092,kafka-2:9092",
        spark_ui=True,
        alert_timeout_s=2.5,
        windows={"error_rate": {"window": "2 minutes", "delay": "5 minutes"}},
        service_by_topic={"nginx-logs": "shop"},
    )
    # the job's own environment names other folders and another broker
    monkeypatch.setenv("LOGSTREAM_STATE_DIR", str(tmp_path / "driver"))
    monkeypatch.setenv("LOGSTREAM_DATA_ROOT", str(tmp_path / "driver" / "data"))
    monkeypatch.setenv("LOGSTREAM_KAFKA_BOOTSTRAP_SERVERS", "localhost:1")
    args = load_job(name).parse_args([*REQUIRED[name], *settings_arguments(submitter)])

    received = settings_from_arguments(args)

    assert received == submitter
    assert received.data_root == "s3a://lake/logstream"
    assert received.state_dir == tmp_path / "worker"
    assert received.windows == {"error_rate": {"window": "2 minutes", "delay": "5 minutes"}}
    assert (received.spark_ui, received.alert_timeout_s) == (True, 2.5)
