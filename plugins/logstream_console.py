"""The logstream console in the Airflow UI: a FastAPI app mounted in the API server under
``/logstream`` and a "Logstream" entry in the UI's menu that shows it.

Wiring only; the app is :mod:`logstream.console`. ``logstream up`` points
``AIRFLOW__CORE__PLUGINS_FOLDER`` at this folder.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from logstream.console.app import URL_PREFIX, create_app


class LogstreamConsolePlugin(AirflowPlugin):
    name = "logstream_console"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "logstream console"},
    ]
    # the UI frames ``href`` (relative to Airflow's base URL) at /plugin/<url_route>
    external_views = [
        {
            "name": "Logstream",
            "href": f"{URL_PREFIX.lstrip('/')}/health",
            "destination": "nav",
            "url_route": "logstream",
        },
    ]
