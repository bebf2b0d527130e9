"""How locations map to the Python-side filesystems (fsspec) and how the settings reach S3 and
HDFS clients; the servers themselves are exercised in tests/integration/test_storage_remote.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logstream.errors import ConfigError
from logstream.storage import remote
from logstream.storage.fs import Storage, join, parse_location


def test_local_paths_and_file_uris_are_absolute_local_paths(tmp_path: Path):
    plain = parse_location(str(tmp_path / "reports"))
    assert (plain.scheme, plain.path) == ("file", str(tmp_path / "reports"))
    assert plain.back(str(tmp_path / "reports" / "a.json")) == str(tmp_path / "reports" / "a.json")
    uri = parse_location(f"file://{tmp_path}/reports")
    assert uri.path == str(tmp_path / "reports")
    assert uri.back(f"{tmp_path}/reports/a.json") == f"file://{tmp_path}/reports/a.json"
    assert parse_location(f"file:{tmp_path}").path == str(tmp_path)  # Hadoop's spelling
    relative = parse_location("reports")
    assert relative.path == os.path.join(os.getcwd(), "reports")


def test_hdfs_locations_keep_their_namenode():
    where = parse_location("hdfs://nn.example:8020/logstream/reports/")
    assert (where.scheme, where.authority, where.path) == (
        "hdfs",
        "nn.example:8020",
        "/logstream/reports/",
    )
    assert (
        where.back("/logstream/reports/a.json") == "hdfs://nn.example:8020/logstream/reports/a.json"
    )
    with pytest.raises(ConfigError, match="names no NameNode"):
        parse_location("hdfs:///logstream")


@pytest.mark.parametrize("scheme", ["s3a", "s3"])
def test_s3_locations_are_bucket_and_key_and_keep_their_scheme(scheme: str):
    where = parse_location(f"{scheme}://bucket/logstream/reports/")
    assert (where.scheme, where.authority, where.path) == (
        "s3",
        "bucket",
        "bucket/logstream/reports",
    )
    assert (
        where.back("bucket/logstream/reports/a.json")
        == f"{scheme}://bucket/logstream/reports/a.json"
    )
    assert parse_location(f"{scheme}://bucket").path == "bucket"
    with pytest.raises(ConfigError, match="names no bucket"):
        parse_location(f"{scheme}:///key")


def test_other_schemes_are_refused_with_the_supported_ones_named():
    with pytest.raises(ConfigError, match=r"gs:// scheme is not supported .* hdfs:// or s3a://"):
        parse_location("gs://bucket/reports")


def test_join_appends_parts_to_paths_and_uris():
    assert join("s3a://bucket/root/", "status", "a.json") == "s3a://bucket/root/status/a.json"
    assert join("hdfs://nn:8020/r", "/x/") == "hdfs://nn:8020/r/x"
    assert join(Path("/tmp/r"), "a.json") == "/tmp/r/a.json"


def test_s3_settings_become_s3a_and_s3fs_options(settings, tmp_path: Path, monkeypatch):
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKID\naws_secret_access_key = s3cr3t\n")
    configured = settings.replace(
        s3_endpoint="http://127.0.0.1:9000",
        s3_path_style=True,
        s3_region="eu-west-1",
        s3_credentials_file=str(credentials),
    )
    assert remote.s3a_options(configured) == {
        "fs.s3a.endpoint": "http://127.0.0.1:9000",
        "fs.s3a.connection.ssl.enabled": "false",
        "fs.s3a.path.style.access": "true",
        "fs.s3a.endpoint.region": "eu-west-1",
    }
    assert remote.s3a_secret_options(configured) == {
        "fs.s3a.access.key": "AKID",
        "fs.s3a.secret.key": "s3cr3t",
    }
    assert remote.s3fs_options(configured) == {
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"},
        "use_listings_cache": False,
        "config_kwargs": {"s3": {"addressing_style": "path"}},
        "key": "AKID",
        "secret": "s3cr3t",
    }
    assert "s3cr3t" not in repr(remote.s3_credentials(configured))
    # without a file: the environment's AWS variables, else none
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    assert remote.s3_credentials(settings).access_key == "ENVKEY"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    assert remote.s3_credentials(settings) is None and remote.s3a_secret_options(settings) == {}


def test_a_bad_credentials_file_says_what_to_write(settings, tmp_path: Path):
    empty = tmp_path / "credentials"
    empty.write_text("[other]\naws_access_key_id = x\n")
    with pytest.raises(ConfigError, match=r"no \[default\] aws_access_key_id"):
        remote.s3_credentials(settings.replace(s3_credentials_file=str(empty)))
    with pytest.raises(ConfigError, match="cannot be read"):
        remote.s3_credentials(settings.replace(s3_credentials_file=str(tmp_path / "missing")))


def test_webhdfs_address_defaults_to_the_namenode_host(settings):
    assert remote.webhdfs_address(settings, "nn.example:8020") == ("nn.example", 9870, False)
    explicit = settings.replace(webhdfs_url="https://gateway:14000")
    assert remote.webhdfs_address(explicit, "nn.example:8020") == ("gateway", 14000, True)
    with pytest.raises(ConfigError, match="LOGSTREAM_WEBHDFS_URL"):
        remote.webhdfs_address(settings.replace(webhdfs_url="gateway:14000"), "nn:8020")


def test_storage_round_trip_on_the_local_disk(settings, tmp_path: Path):
    storage = Storage(settings)
    root = f"file://{tmp_path}/r"
    storage.write_text(f"{root}/a/x.json", "1")
    storage.write_text(f"{root}/a/x.json", "2")
    assert storage.read_text(f"{root}/a/x.json") == "2"
    assert [p.name for p in (tmp_path / "r" / "a").iterdir()] == ["x.json"]  # no temporary left
    assert storage.list_files(root) == [f"{root}/a/x.json"]
    storage.rename(f"{root}/a/x.json", f"{root}/b/y.json")
    assert storage.list_names(root) == ["a", "b"] and storage.read_text(f"{root}/a/x.json") is None
    storage.delete(f"{root}/b")
    assert storage.list_files(root) == []
    assert storage.uri(str(tmp_path / "p.html")) == (tmp_path / "p.html").as_uri()
