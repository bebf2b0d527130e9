"""The Airflow environments: the embedded local one (``make run``) and the team's (Postgres,
Celery on Redis) share one base; each adds only its executor, database and what that needs."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography.fernet import Fernet

from logstream.config import Settings
from logstream.runtime import airflow_local, airflow_team
from logstream.runtime.postgres import Database

KEYS = {"jwt_secret": "jwt", "api_secret_key": "api", "fernet_key": "fernet"}


def _settings(tmp_path: Path, **changes) -> Settings:
    return Settings.load(env={}, state_dir=tmp_path / "state", airflow_port=18080, **changes)


def _team_env(settings: Settings) -> dict[str, str]:
    database = Database("127.0.0.1", 15432, "airflow", "airflow", "p@ss/word")
    broker = "redis://:secret@127.0.0.1:16379/0"
    return airflow_team.team_env(settings, database, broker, KEYS, worker_concurrency=3)


def test_the_local_environment_is_the_base_with_local_executor_on_sqlite(tmp_path):
    settings = _settings(tmp_path)
    local = airflow_local.airflow_env(settings)
    base = airflow_local.base_env(settings, settings.airflow_home)

    assert {k: local[k] for k in base} == base
    assert set(local) - set(base) == {
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__PARALLELISM",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    }
    assert local["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert local["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{tmp_path / 'state' / 'airflow' / 'airflow.db'}"
    )
    assert local["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert local["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(
        tmp_path / "state" / "airflow" / "simple_auth_manager_passwords.json.generated"
    )


def test_the_team_environment_is_the_same_base_in_its_own_home_with_celery_and_postgres(
    tmp_path,
):
    settings = _settings(tmp_path)
    team = _team_env(settings)
    home = tmp_path / "state" / "airflow-team"
    base = airflow_local.base_env(settings, home)

    assert {k: team[k] for k in base if not k.startswith("LOGSTREAM_")} == {
        k: v for k, v in base.items() if not k.startswith("LOGSTREAM_")
    }
    assert team["AIRFLOW_HOME"] == str(home)
    assert team["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith(f"{home}/")
    assert team["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # the password is URL-quoted (@ and / would end the user info and the host)
    assert team["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        "postgresql+psycopg2://airflow:p%40ss%2Fword@127.0.0.1:15432/airflow"
    )
    assert team["AIRFLOW__CELERY__RESULT_BACKEND"] == (
        "db+postgresql+psycopg2://airflow:p%40ss%2Fword@127.0.0.1:15432/airflow"
    )
    assert team["AIRFLOW__CELERY__BROKER_URL"] == "redis://:secret@127.0.0.1:16379/0"
    assert team["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "3"
    assert team["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert (
        team["AIRFLOW__API_AUTH__JWT_SECRET"],
        team["AIRFLOW__API__SECRET_KEY"],
        team["AIRFLOW__CORE__FERNET_KEY"],
    ) == ("jwt", "api", "fernet")
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC" in team


def test_tasks_on_the_team_read_back_exactly_the_settings_it_was_started_with(tmp_path):
    settings = _settings(
        tmp_path,
        spark_master="local[2]",
        service_by_topic={"edge": "web"},
        spark_ui=True,
        alert_timeout_s=2.5,
    )
    team = _team_env(settings)
    variables = {k: v for k, v in team.items() if k.startswith("LOGSTREAM_")}

    assert Settings.load(env=variables) == settings


def test_the_shared_keys_are_generated_once_into_a_private_file(tmp_path):
    keys = airflow_team.shared_keys(tmp_path)

    assert airflow_team.shared_keys(tmp_path) == keys
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    Fernet(keys["fernet_key"].encode())  # a valid Fernet key
    assert len({keys["jwt_secret"], keys["api_secret_key"]}) == 2
    assert min(len(keys["jwt_secret"]), len(keys["api_secret_key"])) >= 48
