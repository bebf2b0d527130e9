"""A local Prometheus server (Debian's ``prometheus``) on loopback, scraping the streaming job.

Started and stopped like the Kafka broker. Its state lives in one folder (by default
``<state_dir>/prometheus/``): ``prometheus.yml`` (``deploy/prometheus/prometheus.yml`` rendered with
the actual ports, intervals and absolute rule paths), ``data/`` (its own TSDB), ``port`` (the port
it listens on, kept between starts), ``prometheus.pid`` and ``logs/prometheus.log``. It listens on
``127.0.0.1`` only; with port 0 a free port is picked at the first start and reused afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from logstream.config import PROJECT_ROOT, Settings
from logstream.errors import ServiceError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEPLOY_DIR = PROJECT_ROOT / "deploy" / "prometheus"
DEFAULT_CONFIG = DEPLOY_DIR / "prometheus.yml"
#: The scrape job of the streaming job's exporter in the shipped configuration.
SCRAPE_JOB = "logstream"


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie is gone
    except (FileNotFoundError, IndexError):
        return True


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


@dataclass(frozen=True)
class PrometheusStatus:
    running: bool
    pid: int | None
    url: str
    folder: Path
    log_file: Path

    def describe(self) -> str:
        if self.running:
            return f"prometheus: running (pid {self.pid}) at {self.url}; log {self.log_file}"
        return f"prometheus: stopped (folder {self.folder})"


class LocalPrometheus:
    """Start, stop and query one local Prometheus that scrapes ``metrics_targets``."""

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
        self.configured_port = port
        self.metrics_targets = tuple(metrics_targets)
        self.rule_files = rule_files
        self.alertmanager_url = alertmanager_url
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.config_template = Path(config_template)
        self.config_file = self.folder / "prometheus.yml"
        self.pid_file = self.folder / "prometheus.pid"
        self.port_file = self.folder / "port"
        self.log_file = self.folder / "logs" / "prometheus.log"

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

    @property
    def port(self) -> int:
        if self.configured_port:
            return self.configured_port
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}" if self.port else ""

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
        port = self._choose_port()
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
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
        with open(self.log_file, "ab") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"Prometheus exited with code {process.returncode} while starting; see "
                    f"{self.log_file} (check {self.config_file} with `promtool check config`):\n"
                    f"{self._tail()}"
                )
            if self._ready(port):
                return self.status()
            time.sleep(0.2)
        self.stop()
        raise ServiceError(
            f"Prometheus did not become ready within {timeout:.0f}s; see {self.log_file}"
        )

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM (Prometheus closes its TSDB cleanly), then SIGKILL. False if not running."""
        pid = self._pid()
        if pid is None:
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if not _alive(pid):
                break
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> PrometheusStatus:
        pid = self._pid()
        running = pid is not None and bool(self.port) and self._ready(self.port)
        return PrometheusStatus(running, pid, self.url, self.folder, self.log_file)

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

    # -- internals -------------------------------------------------------------------------
    def _choose_port(self) -> int:
        if self.configured_port:
            if _port_open(self.configured_port):
                raise ServiceError(
                    f"port {HOST}:{self.configured_port} is taken by another process; stop it "
                    "or choose another port for Prometheus (0 picks a free one)"
                )
            return self.configured_port
        port = self.port
        if not port or _port_open(port):
            if port:
                log.warning("Prometheus' recorded port %d is taken; picking a free port", port)
            port = _free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port_file.write_text(str(port))
        return port

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    @staticmethod
    def _ready(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/-/ready", timeout=1.0) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
