#!/usr/bin/env bash
# The Airflow api-server of docker-compose.yml: migrate the metadata database (the other Airflow
# services wait until this server is healthy, so only one process ever migrates), create the
# settings' Kafka topics if missing (as `logstream kafka start` does natively), write the admin's
# password from the environment (.env) to SimpleAuthManager's password file (Airflow generates a
# password only for users missing from that file), then serve.
set -euo pipefail
: "${AIRFLOW_ADMIN_USER:?set AIRFLOW_ADMIN_USER in .env}"
: "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD in .env}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?docker-compose.yml sets it}"

python - <<'PY'
import json
import os

path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(descriptor, "w") as out:
    json.dump({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, out)
PY

airflow db migrate
python - <<'PY'
from logstream.config import Settings
from logstream.kafka.admin import ensure_topics

settings = Settings.load()
ensure_topics(
    settings.kafka_bootstrap,
    [settings.logs_topic, settings.user_events_topic],
    settings.topic_partitions,
)
PY
exec airflow api-server
