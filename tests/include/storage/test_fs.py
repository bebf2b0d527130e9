"""The local half of logstream.storage.fs: which locations are local folders, and atomic writes."""

from __future__ import annotations

from pathlib import Path

from logstream.storage.fs import local_path, write_local_text


def test_plain_paths_and_file_uris_are_local_other_schemes_are_not():
    assert local_path("/reports") == Path("/reports")
    assert local_path("reports/x") == Path("reports/x")
    assert local_path("file:///reports") == Path("/reports")
    assert local_path("s3a://bucket/reports") is None
    assert local_path("hdfs://nn:8020/reports") is None


def test_write_local_text_creates_the_folder_and_replaces_the_file(tmp_path: Path):
    target = tmp_path / "a" / "b" / "page.html"
    write_local_text(target, "one")
    write_local_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["page.html"]  # no temporary left
