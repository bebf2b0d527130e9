"""A local S3-compatible server on loopback: s3proxy with Apache jclouds' ``filesystem``
backend (buckets are folders, objects files), for tests and for trying ``data_root=s3a://...``
on one machine.

Requests must be signed (AWS signature v2 or v4) with the server's access key and secret: there
is no anonymous access. The keys are generated at the first start and kept, mode 0600, in
``<home>/credentials`` (the AWS credentials format), which is what ``s3_credentials_file``
points at (:meth:`LocalS3.settings_overrides`). Its folder (default ``<state_dir>/s3``) also
holds ``data/`` (the buckets), ``s3proxy.properties`` (0600), ``s3.pid``, ``port`` (a free port
picked at the first start and reused) and ``logs/s3proxy.log``.
"""

from __future__ import annotations

import configparser
import os
import secrets
from pathlib import Path

from logstream.config import Settings
from logstream.runtime.jars import bundle_jars
from logstream.runtime.java import find_java
from logstream.runtime.server import (
    HOST,
    ServerProcess,
    ServerStatus,
    choose_port,
    port_open,
    read_port,
)

#: the region clients sign for; s3proxy accepts any
REGION = "us-east-1"
_JVM_OPTIONS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-DLOG_LEVEL=warn")


class LocalS3(ServerProcess):
    """Start, stop and inspect a local s3proxy whose state lives in ``home`` (default
    ``<state_dir>/s3``), on ``port`` when given, else a free port picked once and reused."""

    def __init__(self, settings: Settings, home: Path | None = None, port: int = 0) -> None:
        self.settings = settings
        self.home = Path(home) if home is not None else Path(settings.state_dir) / "s3"
        self.port_file = self.home / "port"
        self.configured_port = port
        self.credentials_file = self.home / "credentials"
        self.log_file = self.home / "logs" / "s3proxy.log"
        super().__init__("the local S3 server (s3proxy)", self.home / "s3.pid", self.log_file)

    @property
    def port(self) -> int:
        return self.configured_port or read_port(self.port_file)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``: the ``s3_endpoint`` setting for this server, or ""."""
        return f"http://{HOST}:{self.port}" if self.port else ""

    def settings_overrides(self) -> dict[str, str | bool]:
        """The settings that point Spark's s3a:// and Python-side access at this server (for
        ``Settings.replace``)."""
        return {
            "s3_endpoint": self.endpoint,
            "s3_path_style": True,
            "s3_region": REGION,
            "s3_credentials_file": str(self.credentials_file),
        }

    def credentials(self) -> tuple[str, str]:
        """(access key, secret), generated and saved on first use."""
        parser = configparser.ConfigParser()
        if self.credentials_file.is_file():
            parser.read(self.credentials_file)
            section = parser["default"]
            return section["aws_access_key_id"], section["aws_secret_access_key"]
        key, secret = f"logstream{secrets.token_hex(6)}", secrets.token_urlsafe(30)
        parser["default"] = {"aws_access_key_id": key, "aws_secret_access_key": secret}
        self.home.mkdir(parents=True, exist_ok=True)
        _write_private(self.credentials_file, parser)
        return key, secret

    def start(self, timeout: float = 90.0) -> ServerStatus:
        """Start it (idempotent) and wait until it accepts connections."""
        status = self.status()
        if status.running:
            return status
        (jar,) = bundle_jars(self.settings, "s3proxy")
        port = choose_port(
            self.port_file,
            self.configured_port,
            name=self.name,
            change_port="pass another port to LocalS3 (0 picks one)",
        )
        key, secret = self.credentials()
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        properties = self.home / "s3proxy.properties"
        _write_private(
            properties,
            "\n".join(
                [
                    f"s3proxy.endpoint=http://{HOST}:{port}",
                    "s3proxy.authorization=aws-v2-or-v4",
                    f"s3proxy.identity={key}",
                    f"s3proxy.credential={secret}",
                    "jclouds.provider=filesystem",
                    f"jclouds.filesystem.basedir={self.home / 'data'}",
                    "",
                ]
            ),
        )
        command = [find_java(), *_JVM_OPTIONS, "-jar", str(jar), "--properties", str(properties)]
        self.launch(command, lambda: port_open(HOST, port), timeout)
        return self.status()

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (idempotent), signed with the server's credentials."""
        import s3fs

        key, secret = self.credentials()
        client = s3fs.S3FileSystem(
            key=key,
            secret=secret,
            client_kwargs={"endpoint_url": self.endpoint, "region_name": REGION},
            config_kwargs={"s3": {"addressing_style": "path"}},
            skip_instance_cache=True,
        )
        if name not in client.ls(""):
            client.call_s3("create_bucket", Bucket=name)

    def status(self) -> ServerStatus:
        pid = self.pid()
        running = pid is not None and bool(self.port) and port_open(HOST, self.port)
        return ServerStatus(
            "s3", running, pid, self.endpoint, self.home, self.log_file,
            stopped_note=f"folder {self.home}",
        )  # fmt: skip


def _write_private(path: Path, content: str | configparser.ConfigParser) -> None:
    """Write a file only its owner reads (it holds a secret)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        if isinstance(content, configparser.ConfigParser):
            content.write(handle)
        else:
            handle.write(content)
    os.chmod(path, 0o600)
