"""The one submit path from a DAG task to a job (logstream.orchestration): what spark-submit is
given, the settings a task resolves from the ``spark_default`` connection, and which errors fail
a task without retries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logstream.config import PROJECT_ROOT, Settings
from logstream.errors import ConfigError
from logstream.orchestration import no_retry_on, plan_submission, task_settings


def test_a_submission_carries_the_jobs_arguments_then_every_setting(settings: Settings):
    custom = settings.replace(data_root="hdfs://nn/logstream", reports_dir="/shared/reports")

    submission = plan_submission(custom, "quality_check.py", ["--date", "2026-01-14"], "q")

    assert submission.application == str(PROJECT_ROOT / "jobs" / "quality_check.py")
    assert submission.application_args[:2] == ["--date", "2026-01-14"]
    settings_args = submission.application_args[2:]
    assert settings_args[::2] == ["--set"] * (len(settings_args) // 2)  # nothing else after
    pairs = dict(item.split("=", 1) for item in settings_args[1::2])
    assert pairs["data_root"] == "hdfs://nn/logstream"
    assert pairs["reports_dir"] == "/shared/reports"
    assert pairs["checkpoint_root"] == str(settings.state_dir / "checkpoints")
    assert pairs["shuffle_partitions"] == "2"
    # the connection names the master; memory and jars have spark-submit options of their own
    assert "spark.master" not in submission.conf and "spark.jars" not in submission.conf
    assert submission.driver_memory == "1g" and "spark.driver.memory" not in submission.conf
    assert submission.jars and all(Path(jar).is_file() for jar in submission.jars.split(","))
    assert submission.conf["spark.sql.shuffle.partitions"] == "2"
    assert submission.name == "q"


def test_task_settings_take_the_master_of_the_spark_default_connection(monkeypatch, tmp_path):
    monkeypatch.setenv("LOGSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LOGSTREAM_SPARK_MASTER", "local[1]")
    monkeypatch.delenv("AIRFLOW_CONN_SPARK_DEFAULT", raising=False)
    assert task_settings().spark_master == "local[1]"  # no connection: the setting stands

    connection = {"conn_type": "spark", "host": "spark://master.example", "port": 7077}
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(connection))
    assert task_settings().spark_master == "spark://master.example:7077"
    assert task_settings().state_dir == tmp_path


def test_permanent_errors_fail_the_task_without_retries_and_others_pass_through():
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="bad path"), no_retry_on(ConfigError):
        raise ConfigError("bad path")
    # worth a retry: raised as it is
    with pytest.raises(OSError, match="disk full"), no_retry_on(ConfigError):
        raise OSError("disk full")
