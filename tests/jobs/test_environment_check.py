"""spark-submit of a job under jobs/ from the venv, with the connector jars from the cache."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from logstream.runtime.spark import spark_submit_command

JOB = Path(__file__).resolve().parents[2] / "jobs" / "environment_check.py"


def test_spark_submit_runs_a_job_with_the_kafka_connector(settings):
    rows = 2_500
    command = spark_submit_command(settings, JOB, ["--rows", str(rows)])
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sum"] == rows * (rows + 1) // 2
    assert report["master"] == "local[2]"
    assert report["kafka_connector"] is True
    import pyspark

    assert report["spark_version"] == pyspark.__version__
