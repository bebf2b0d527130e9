"""How logstream reaches storage that is not the local disk: ``hdfs://`` and ``s3a://``.

One place turns the settings into what each client needs:

* Spark (Hadoop's S3A filesystem): :func:`s3a_options` (endpoint, path-style access, region;
  safe on a command line) and :func:`s3a_secret_options` (the credentials, set in the driver's
  session only, never passed as spark-submit arguments);
* Python beside Spark (:class:`logstream.storage.fs.Storage`, over fsspec): :func:`s3fs_options`
  and :func:`webhdfs_address`.

S3 credentials come from the file named by ``s3_credentials_file`` (the AWS shared-credentials
format: a ``[default]`` section with ``aws_access_key_id`` and ``aws_secret_access_key``, and
optionally ``aws_session_token``), else from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
(/ ``AWS_SESSION_TOKEN``) in the environment, else none: the clients' own chains (instance
roles, ...) apply. No credential is ever a setting with a default.
"""

from __future__ import annotations

import configparser
import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from logstream.config import Settings
from logstream.errors import ConfigError

#: Hadoop 3's default NameNode HTTP port (WebHDFS), used when ``webhdfs_url`` is not set.
WEBHDFS_DEFAULT_PORT = 9870


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str
    session_token: str = ""

    def __repr__(self) -> str:  # never print a secret
        return f"S3Credentials(access_key={self.access_key!r}, secret_key=***)"


def s3_credentials(settings: Settings) -> S3Credentials | None:
    """The S3 credentials of ``settings`` (see the module's docstring), or None."""
    if settings.s3_credentials_file:
        return _credentials_file(Path(settings.s3_credentials_file).expanduser())
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return S3Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN", ""))
    return None


def _credentials_file(path: Path) -> S3Credentials:
    parser = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise ConfigError(
            f"s3_credentials_file {path} cannot be read ({exc.strerror}); point "
            "LOGSTREAM_S3_CREDENTIALS_FILE at a file with a [default] section holding "
            "aws_access_key_id and aws_secret_access_key"
        ) from None
    except configparser.Error:
        raise ConfigError(
            f"s3_credentials_file {path} is not an AWS credentials file; write a [default] "
            "section with aws_access_key_id and aws_secret_access_key"
        ) from None
    section = parser["default"] if parser.has_section("default") else {}
    key, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    if not key or not secret:
        raise ConfigError(
            f"s3_credentials_file {path} has no [default] aws_access_key_id and "
            "aws_secret_access_key; add them"
        )
    return S3Credentials(key.strip(), secret.strip(), section.get("aws_session_token", "").strip())


def s3a_options(settings: Settings) -> dict[str, str]:
    """Hadoop S3A options (``fs.s3a.*``) for the endpoint settings; no secrets."""
    options: dict[str, str] = {}
    if settings.s3_endpoint:
        options["fs.s3a.endpoint"] = settings.s3_endpoint
        secure = urlsplit(settings.s3_endpoint).scheme != "http"
        options["fs.s3a.connection.ssl.enabled"] = str(secure).lower()
    if settings.s3_path_style:
        options["fs.s3a.path.style.access"] = "true"
    if settings.s3_region:
        options["fs.s3a.endpoint.region"] = settings.s3_region
    return options


def s3a_secret_options(settings: Settings) -> dict[str, str]:
    """Hadoop S3A credential options from :func:`s3_credentials` (empty when there are none)."""
    credentials = s3_credentials(settings)
    if credentials is None:
        return {}
    options = {
        "fs.s3a.access.key": credentials.access_key,
        "fs.s3a.secret.key": credentials.secret_key,
    }
    if credentials.session_token:
        options["fs.s3a.session.token"] = credentials.session_token
        options["fs.s3a.aws.credentials.provider"] = (
            "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
        )
    return options


def s3fs_options(settings: Settings) -> dict:
    """Keyword arguments of ``s3fs.S3FileSystem`` for the same endpoint and credentials as S3A.

    Listings are not cached: status files and reports are written by other processes."""
    client: dict[str, str] = {}
    if settings.s3_endpoint:
        client["endpoint_url"] = settings.s3_endpoint
    if settings.s3_region:
        client["region_name"] = settings.s3_region
    options: dict = {"client_kwargs": client, "use_listings_cache": False}
    if settings.s3_path_style:
        options["config_kwargs"] = {"s3": {"addressing_style": "path"}}
    credentials = s3_credentials(settings)
    if credentials is not None:
        options["key"] = credentials.access_key
        options["secret"] = credentials.secret_key
        if credentials.session_token:
            options["token"] = credentials.session_token
    return options


def webhdfs_address(settings: Settings, authority: str) -> tuple[str, int, bool]:
    """(host, port, https) of the WebHDFS endpoint for the NameNode ``authority`` of an
    ``hdfs://`` URI: ``webhdfs_url`` when set, else the NameNode's host on Hadoop's default HTTP
    port."""
    if settings.webhdfs_url:
        parts = urlsplit(settings.webhdfs_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"webhdfs_url={settings.webhdfs_url!r} is not http(s)://host:port; set "
                "LOGSTREAM_WEBHDFS_URL to the NameNode's HTTP address"
            )
        default = 443 if parts.scheme == "https" else WEBHDFS_DEFAULT_PORT
        return parts.hostname, parts.port or default, parts.scheme == "https"
    host = urlsplit(f"hdfs://{authority}").hostname
    if not host:
        raise ConfigError(
            f"hdfs://{authority} names no NameNode host; write hdfs://<namenode>:<port>/path"
        )
    return host, WEBHDFS_DEFAULT_PORT, False


def hdfs_user(settings: Settings) -> str:
    """The user WebHDFS requests act as (``hdfs_user``, else this process's user)."""
    return settings.hdfs_user or getpass.getuser()
