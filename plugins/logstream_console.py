"""The logstream console in the Airflow UI: a FastAPI app mounted in the API server under
``/logstream``, a "Logstream" entry in the UI's menu that shows it, and a root middleware that
starts the console's warm-up with the server.

Wiring only; the app is :mod:`logstream.console`. ``logstream up`` points
``AIRFLOW__CORE__PLUGINS_FOLDER`` at this folder.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from logstream.console.app import URL_PREFIX, StartWarmUp, create_app

CONSOLE = create_app()


class LogstreamConsolePlugin(AirflowPlugin):
    name = "logstream_console"
    fastapi_apps = [
        {"app": CONSOLE, "url_prefix": URL_PREFIX, "name": "logstream console"},
    ]
    # starts the console's warm-up when the API server starts (reads no request)
    fastapi_root_middlewares = [
        {
            "middleware": StartWarmUp,
            "args": [],
            "kwargs": {"console": CONSOLE},
            "name": "logstream console warm-up",
        },
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
