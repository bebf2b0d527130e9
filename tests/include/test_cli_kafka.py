"""`logstream kafka ...` as an operator meets it: clear status, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import free_port


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logstream.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_status_reports_a_stopped_broker(tmp_path):
    port = free_port()
    env = {"LOGSTREAM_STATE_DIR": str(tmp_path), "LOGSTREAM_KAFKA_PORT": str(port)}
    result = run_cli("kafka", "status", env=env)
    assert result.returncode == 3
    assert f"kafka: stopped (nothing listening at 127.0.0.1:{port}" in result.stdout
    assert "logstream kafka start" in result.stdout


def test_start_without_jars_says_how_to_fix_it(tmp_path):
    env = {
        "LOGSTREAM_STATE_DIR": str(tmp_path / "state"),
        "LOGSTREAM_JARS_DIR": str(tmp_path / "no-jars"),
        "LOGSTREAM_KAFKA_PORT": str(free_port()),
        "LOGSTREAM_KAFKA_CONTROLLER_PORT": str(free_port()),
    }
    result = run_cli("kafka", "start", env=env)
    assert result.returncode == 2
    assert "kafka-broker jars are missing" in result.stderr
    assert "make jars" in result.stderr
    assert "Traceback" not in result.stderr


def test_start_without_java_says_how_to_fix_it(tmp_path):
    env = {
        "LOGSTREAM_STATE_DIR": str(tmp_path / "state"),
        "LOGSTREAM_KAFKA_PORT": str(free_port()),
        "JAVA_HOME": "",
        "PATH": os.path.dirname(sys.executable),  # the venv only: no java
    }
    result = run_cli("kafka", "start", env=env)
    assert result.returncode == 2
    assert "Java is not installed" in result.stderr
    assert "JAVA_HOME" in result.stderr


def test_start_stop_cycle_keeps_topics(tmp_path):
    env = {
        "LOGSTREAM_STATE_DIR": str(tmp_path),
        "LOGSTREAM_KAFKA_PORT": str(free_port()),
        "LOGSTREAM_KAFKA_CONTROLLER_PORT": str(free_port()),
    }
    try:
        started = run_cli("kafka", "start", env=env)
        assert started.returncode == 0, started.stderr
        assert "created topics logs, user-events (3 partitions)" in started.stdout
        assert run_cli("kafka", "status", env=env).returncode == 0
        assert (tmp_path / "kafka" / "logs" / "server.log").stat().st_size > 0
        assert "was not running" not in run_cli("kafka", "stop", env=env).stdout
        assert run_cli("kafka", "status", env=env).returncode == 3
        # second start reuses the formatted storage: topics are still there
        restarted = run_cli("kafka", "start", env=env)
        assert restarted.returncode == 0, restarted.stderr
        assert "created topics" not in restarted.stdout
    finally:
        run_cli("kafka", "stop", env=env)


def test_storage_formats_with_a_cluster_id_that_starts_with_a_dash(tmp_path, monkeypatch):
    """One random cluster id in 64 starts with "-"; the storage tool must not take it for an
    option (it did, and `kafka start` failed)."""
    from logstream.config import Settings
    from logstream.kafka import broker as broker_module

    fresh = broker_module.new_cluster_id()
    monkeypatch.setattr(broker_module, "new_cluster_id", lambda: "-" + fresh[1:])
    settings = Settings.load(
        env={},
        state_dir=tmp_path,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_heap="256m",
    )
    broker = broker_module.KafkaBroker(settings)
    try:
        broker.start()
        meta = (broker.data_dir / "kraft" / "meta.properties").read_text()
        assert f"cluster.id=-{fresh[1:]}" in meta
    finally:
        broker.stop()


def test_a_closed_pipe_ends_the_command_quietly(monkeypatch, capsys):
    """`logstream ... | head -1`: the reader goes away; no BrokenPipeError traceback."""
    import os
    import sys

    from logstream.cli import main as cli

    read_end, write_end = os.pipe()
    os.close(read_end)
    closed = os.fdopen(write_end, "w", buffering=1)  # line-buffered: the first line fails
    monkeypatch.setattr(sys, "stdout", closed)
    try:
        assert cli.main(["airflow-env"]) == 141
    finally:
        closed.close()
    assert "Traceback" not in capsys.readouterr().err
