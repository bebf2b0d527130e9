"""Airflow's REST API (``/api/v2``) as the project's admin user: a token, the project's DAGs, and
unpausing the scheduled ones. The same for the embedded local Airflow and a team's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logstream.errors import ServiceError

#: Tag every DAG of the project carries.
PROJECT_TAG = "logstream"


@dataclass
class AirflowApi:
    """``url``: the API server (``http://127.0.0.1:8080``); ``password_file``: SimpleAuthManager's
    generated passwords (JSON ``{user: password}``); ``user``: the admin."""

    url: str
    password_file: Path
    user: str
    timeout: float = 30.0

    def token(self) -> str:
        """A bearer token for ``user`` (``POST /auth/token``)."""
        import requests

        try:
            password = json.loads(Path(self.password_file).read_text())[self.user]
        except (OSError, ValueError, KeyError) as exc:
            raise ServiceError(
                f"no password for Airflow user {self.user!r} in {self.password_file} ({exc}); "
                "it is written when the API server first starts"
            ) from None
        answer = requests.post(
            f"{self.url}/auth/token",
            json={"username": self.user, "password": password},
            timeout=self.timeout,
        )
        if answer.status_code not in (200, 201):
            raise ServiceError(
                f"Airflow at {self.url} refused the login of {self.user!r}: HTTP "
                f"{answer.status_code}; check {self.password_file}"
            )
        return answer.json()["access_token"]

    def _call(self, method: str, path: str, token: str, **kwargs: Any) -> Any:
        import requests

        answer = requests.request(
            method,
            f"{self.url}/api/v2/{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.timeout,
            **kwargs,
        )
        if answer.status_code >= 300:
            raise ServiceError(
                f"Airflow API {method} /api/v2/{path} answered HTTP {answer.status_code}: "
                f"{answer.text[:300]!r}"
            )
        return answer.json()

    def project_dags(self, token: str) -> list[dict]:
        """Every DAG tagged :data:`PROJECT_TAG` as the API lists it (``dag_id``, ``is_paused``,
        ``timetable_summary``, ...)."""
        answer = self._call("GET", "dags", token, params={"tags": PROJECT_TAG, "limit": 100})
        return answer.get("dags", [])

    def unpause_scheduled(self) -> list[str]:
        """Unpause the project's DAGs that have a schedule (not the manual-only ones); their ids.

        With ``catchup=False`` a cron DAG then runs its latest past tick at once and goes on from
        there; nothing older is caught up."""
        token = self.token()
        unpaused = []
        for dag in self.project_dags(token):
            if dag.get("timetable_summary") in (None, "None") or not dag.get("is_paused"):
                continue
            self._call("PATCH", f"dags/{dag['dag_id']}", token, json={"is_paused": False})
            unpaused.append(dag["dag_id"])
        return sorted(unpaused)
