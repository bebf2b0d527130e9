"""The team Airflow's servers and environment, cheaply (the full topology and the DAGs run in
tests/cluster/test_airflow_team.py): a real Postgres and Redis started on loopback with
generated passwords, and Airflow's own CLI reaching the Postgres metadata database with the
team's environment (the ``airflow`` role). The environment's values are unit-tested in
tests/include/test_airflow_env.py."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import psycopg2
import pytest
import redis

from logstream.config import Settings
from logstream.runtime.airflow_team import DATABASE, DATABASE_OWNER, TeamAirflow
from tests.conftest import free_port


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamAirflow]:
    settings = Settings.load(
        env={}, state_dir=tmp_path_factory.mktemp("team-smoke") / "state", airflow_port=free_port()
    )
    team = TeamAirflow(settings)
    try:
        team.postgres.start()
        team.postgres.ensure_database(DATABASE, DATABASE_OWNER)
        team.redis.start()
        yield team
    finally:
        team.redis.stop()
        team.postgres.remove()


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_postgres_admits_the_airflow_role_with_its_generated_password_only(servers):
    database = servers.database()
    with (
        psycopg2.connect(
            host=database.host,
            port=database.port,
            user=database.user,
            password=database.password,
            dbname=database.name,
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == ("airflow", False)
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(
            host=database.host,
            port=database.port,
            user="airflow",
            password="airflow",
            dbname="airflow",
        )
    for role in ("postgres", "airflow"):
        assert _mode(servers.postgres.password_file(role)) == 0o600
    assert servers.postgres.status().running


def test_redis_requires_its_generated_password(servers):
    assert redis.Redis.from_url(servers.redis.url()).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=servers.redis.port).ping()
    assert _mode(servers.redis.folder / "password") == 0o600
    assert _mode(servers.redis.config_file) == 0o600


def test_airflow_reaches_its_postgres_metadata_database_with_the_team_environment(servers):
    # one Airflow CLI start (about 10 s on an idle machine): the environment's Postgres URL
    # (psycopg2, the airflow role, the quoted password) is the one Airflow connects with
    checked = servers.airflow("db", "check")
    assert "Connection successful" in checked.stdout + checked.stderr
