"""A local Prometheus server (Debian's ``prometheus``) on loopback, scraping the streaming job.

Started and stopped like the Kafka broker. Its state lives in one folder (by default
``<state_dir>/prometheus/``): ``prometheus.yml`` (``deploy/prometheus/prometheus.yml`` rendered with
the actual ports, intervals and absolute rule paths), ``data/`` (its own TSDB), ``port`` (the port
it listens on, kept between starts), ``prometheus.pid`` and ``logs/prometheus.log``. It listens on
``127.0.0.1`` only; with port 0 a free port is picked at the first start and reused afterwards.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from logstream.config import PROJECT_ROOT, Settings
from logstream.errors import ServiceError
from logstream.runtime.server import HOST, HttpServerProcess, ServerStatus

DEPLOY_DIR = PROJECT_ROOT / "deploy" / "prometheus"
DEFAULT_CONFIG = DEPLOY_DIR / "prometheus.yml"
#: The scrape job of the streaming job's exporter in the shipped configuration.
SCRAPE_JOB = "logstream"


def render_config(
    template: Path,
    metrics_targets: Sequence[str],
    rule_files: Sequence[Path] | None = None,
    alertmanager_url: str = "",
    scrape_interval: str = "15s",
    evaluation_interval: str = "15s",
) -> dict[str, Any]:
    """``template`` (a prometheus.yml) with the exporter targets, intervals, absolute rule paths
    (``rule_files``, or the template's own, resolved beside it) and an Alertmanager target."""
    config = yaml.safe_load(template.read_text()) or {}
    config.setdefault("global", {}).update(
        scrape_interval=scrape_interval, evaluation_interval=evaluation_interval
    )
    rules = rule_files if rule_files is not None else config.get("rule_files", [])
    config["rule_files"] = [str((template.parent / rule).resolve()) for rule in rules]
    jobs = [job for job in config.get("scrape_configs", []) if job.get("job_name") == SCRAPE_JOB]
    if not jobs:
        raise ServiceError(f"{template} has no scrape job {SCRAPE_JOB!r} for the streaming job")
    jobs[0]["static_configs"] = [{"targets": list(metrics_targets)}]
    if alertmanager_url:
        parsed = urllib.parse.urlsplit(alertmanager_url)
        config["alerting"] = {
            "alertmanagers": [
                {
                    "scheme": parsed.scheme or "http",
                    "path_prefix": parsed.path or "/",
                    "static_configs": [{"targets": [parsed.netloc]}],
                }
            ]
        }
    return config


class PrometheusStatus(ServerStatus):
    """The local Prometheus' status; ``url`` is where its API answers."""

    @property
    def url(self) -> str:
        return self.address

    @property
    def folder(self) -> Path:
        return self.data_dir


class LocalPrometheus(HttpServerProcess):
    """Start, stop (SIGTERM, on which Prometheus closes its TSDB cleanly, then SIGKILL) and query
    one local Prometheus that scrapes ``metrics_targets``."""

    def __init__(
        self,
        folder: str | Path,
        port: int = 0,
        metrics_targets: Sequence[str] = (f"{HOST}:9467",),
        *,
        rule_files: Sequence[Path] | None = None,
        alertmanager_url: str = "",
        scrape_interval: str = "15s",
        evaluation_interval: str = "15s",
        config_template: Path = DEFAULT_CONFIG,
    ) -> None:
        self.folder = Path(folder)
        self.metrics_targets = tuple(metrics_targets)
        self.rule_files = rule_files
        self.alertmanager_url = alertmanager_url
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.config_template = Path(config_template)
        self.config_file = self.folder / "prometheus.yml"
        self.log_file = self.folder / "logs" / "prometheus.log"
        super().__init__(
            "Prometheus",
            self.folder / "prometheus.pid",
            self.log_file,
            self.folder / "port",
            port,
            "choose another port for Prometheus (0 picks a free one)",
        )

    @classmethod
    def for_settings(cls, settings: Settings, port: int = 0, **options: Any) -> LocalPrometheus:
        """The project's Prometheus: ``<state_dir>/prometheus``, scraping the job's exporter on
        ``metrics_port`` and sending alerts to the local Alertmanager when one was started."""
        from logstream.ops.alertmanager import recorded_url

        if not settings.metrics_port:
            raise ServiceError(
                "the streaming job's metrics are off (metrics_port=0); set "
                "LOGSTREAM_METRICS_PORT to a port so Prometheus has something to scrape"
            )
        options.setdefault("alertmanager_url", recorded_url(settings))
        targets = (f"{HOST}:{settings.metrics_port}",)
        return cls(Path(settings.state_dir) / "prometheus", port, targets, **options)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> PrometheusStatus:
        """Start it (idempotent) and wait until ``/-/ready`` answers 200."""
        status = self.status()
        if status.running:
            return status
        binary = shutil.which("prometheus")
        if binary is None:
            raise ServiceError(
                "prometheus is not installed; install Debian's prometheus package (`make system`)"
            )
        port = self.choose_port()
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        config = render_config(
            self.config_template,
            self.metrics_targets,
            self.rule_files,
            self.alertmanager_url,
            self.scrape_interval,
            self.evaluation_interval,
        )
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        command = [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.folder / 'data'}",
            f"--web.listen-address={HOST}:{port}",
            "--log.level=warn",
        ]
        self.launch(
            command,
            lambda: self.answers(port),
            timeout,
            check_hint=f" (check {self.config_file} with `promtool check config`)",
        )
        return self.status()

    def status(self) -> PrometheusStatus:
        pid = self.pid()
        running = pid is not None and self.answers()
        return PrometheusStatus("prometheus", running, pid, self.url, self.folder, self.log_file)

    # -- HTTP API --------------------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        """``data`` of a GET on the HTTP API: ``api("query", query="up")``, ``api("alerts")``."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"{self.url}/api/v1/{path}{query}"
        try:
            with urllib.request.urlopen(url, timeout=5.0) as answer:  # noqa: S310
                body = json.load(answer)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ServiceError(f"Prometheus at {self.url} did not answer {url}: {exc}") from exc
        if body.get("status") != "success":
            raise ServiceError(f"Prometheus refused {url}: {body.get('error')}")
        return body["data"]
