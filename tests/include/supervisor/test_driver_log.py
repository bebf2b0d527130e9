"""The driver log excerpt: the last error of this run, without Java stack frames."""

from __future__ import annotations

from logstream.supervisor.driver_log import error_excerpt, rotate_log


def test_excerpt_without_errors_is_the_tail(tmp_path):
    log_path = tmp_path / "stream.log"
    log_path.write_text("".join(f"line {n}\n" for n in range(100)))
    excerpt = error_excerpt(log_path)
    assert excerpt.splitlines() == [f"line {n}" for n in range(60, 100)]


def test_excerpt_starts_at_this_runs_offset(tmp_path):
    log_path = tmp_path / "stream.log"
    log_path.write_text("old run: java.lang.OutOfMemoryError\n")
    offset = log_path.stat().st_size
    with log_path.open("a") as out:
        out.write("new run started\nstill fine\n")
    assert error_excerpt(log_path, offset) == "new run started\nstill fine"


def test_a_log_over_the_limit_is_moved_aside(tmp_path):
    log_path = tmp_path / "stream.log"
    with log_path.open("wb") as out:
        out.truncate(50 * 1024 * 1024 + 1)  # sparse: 1 byte over 50 MiB
    (tmp_path / "stream.log.1").write_text("the run before")

    rotate_log(log_path)

    assert not log_path.exists()
    assert (tmp_path / "stream.log.1").stat().st_size == 50 * 1024 * 1024 + 1


def test_a_log_within_the_limit_stays(tmp_path):
    log_path = tmp_path / "stream.log"
    with log_path.open("wb") as out:
        out.truncate(50 * 1024 * 1024)
    rotate_log(log_path)
    assert log_path.stat().st_size == 50 * 1024 * 1024
