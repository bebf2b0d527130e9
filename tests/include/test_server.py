"""A local server process (logstream.runtime.server) with real processes: a Python HTTP server on a
free loopback port, a process that fails at start, one that never gets ready, one that ignores
SIGTERM. Expected values are written by hand."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logstream.errors import ServiceError
from logstream.runtime.server import (
    HOST,
    HttpServerProcess,
    ServerProcess,
    ServerStatus,
    alive,
    choose_port,
    free_port,
    http_ok,
    port_open,
    read_port,
)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _server(tmp_path: Path) -> ServerProcess:
    return ServerProcess("the test server", tmp_path / "run" / "server.pid", tmp_path / "out.log")


@pytest.mark.parametrize(
    ("text", "port"),
    [(None, 0), ("", 0), ("abc", 0), ("0", 0), ("70000", 0), ("-5", 0), ("8080\n", 8080)],
)
def test_a_recorded_port_is_read_or_is_zero(tmp_path, text, port):
    path = tmp_path / "port"
    if text is not None:
        path.write_text(text)
    assert read_port(path) == port


def test_a_configured_port_is_used_as_is_and_not_recorded(tmp_path):
    wanted = free_port()
    assert choose_port(tmp_path / "port", wanted, name="X", change_port="set X_PORT") == wanted
    assert not (tmp_path / "port").exists()


def test_a_taken_configured_port_is_an_error_saying_what_to_do(tmp_path):
    with socket.create_server((HOST, 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ServiceError) as error:
            choose_port(tmp_path / "port", port, name="X", change_port="set X_PORT to a free port")
    assert str(error.value) == (
        f"port 127.0.0.1:{port} is taken by another process; stop it or set X_PORT to a free port"
    )


def test_the_first_free_port_is_recorded_and_reused_until_it_is_taken(tmp_path):
    port_file = tmp_path / "state" / "port"
    first = choose_port(port_file, 0, name="X", change_port="-")
    assert port_file.read_text() == str(first)
    assert choose_port(port_file, 0, name="X", change_port="-") == first
    with socket.create_server((HOST, first)):
        moved = choose_port(port_file, 0, name="X", change_port="-")
    assert moved != first
    assert port_file.read_text() == str(moved)


def test_alive_is_false_for_a_reaped_process_and_for_a_zombie():
    assert alive(os.getpid())
    done = subprocess.Popen(_python("pass"))
    done.wait()
    assert not alive(done.pid)

    zombie = subprocess.Popen(_python("pass"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # exited but not reaped: state "Z"
        if Path(f"/proc/{zombie.pid}/stat").read_text().split(") ", 1)[1][0] == "Z":
            break
        time.sleep(0.05)
    try:
        assert not alive(zombie.pid)
    finally:
        zombie.wait()


def test_it_starts_detached_until_ready_and_stops(tmp_path):
    port = free_port()
    url = f"http://{HOST}:{port}/"
    server = _server(tmp_path)
    command = [sys.executable, "-m", "http.server", "--bind", HOST, str(port)]
    pid = server.launch(command, lambda: http_ok(url), timeout=30, cwd=tmp_path)
    try:
        assert server.pid() == pid
        assert server.pid_file.read_text() == str(pid)
        assert port_open(HOST, port) and http_ok(url)
        assert os.getsid(pid) == pid  # a session of its own: it outlives its starter's terminal
    finally:
        assert server.stop() is True
    assert not alive(pid)
    assert not server.pid_file.exists()
    assert not port_open(HOST, port)
    assert server.pid() is None
    assert server.stop() is False


def test_a_process_that_exits_while_starting_shows_its_log(tmp_path):
    server = ServerProcess(
        "the test server",
        tmp_path / "server.pid",
        tmp_path / "console.log",
        (tmp_path / "console.log", tmp_path / "server.log"),
    )
    (tmp_path / "server.log").write_text("old line\nconfig: bad value on line 3\n")
    command = _python("import sys; print('starting', flush=True); sys.exit(3)")
    with pytest.raises(ServiceError) as error:
        server.launch(command, lambda: False, timeout=30, check_hint=" (check c.yml)")
    assert str(error.value) == (
        f"the test server exited with code 3 while starting; see {tmp_path / 'console.log'} and "
        f"{tmp_path / 'server.log'} (check c.yml):\n"
        "starting\nold line\nconfig: bad value on line 3"
    )
    assert not server.pid_file.exists()


def test_a_process_never_ready_is_stopped_and_reported(tmp_path):
    server = _server(tmp_path)
    with pytest.raises(ServiceError) as error:
        server.launch(_python("import time; time.sleep(60)"), lambda: False, timeout=1.0)
    assert str(error.value) == (
        f"the test server did not become ready within 1s; see {tmp_path / 'out.log'}"
    )
    assert not server.pid_file.exists()
    assert server.pid() is None


def test_a_process_ignoring_sigterm_is_killed(tmp_path):
    server = _server(tmp_path)
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    ready = lambda: "up" in server.output.read_text()  # noqa: E731
    pid = server.launch(_python(code), ready, timeout=30, poll=0.05)
    began = time.monotonic()
    assert server.stop(timeout=1.0, kill_after=5.0) is True
    assert time.monotonic() - began >= 1.0  # SIGTERM was ignored for the whole timeout
    assert not alive(pid)
    assert not server.pid_file.exists()


def test_a_stale_or_garbled_pid_file_means_not_running_and_is_removed(tmp_path):
    server = _server(tmp_path)
    done = subprocess.Popen(_python("pass"))
    done.wait()
    server.pid_file.parent.mkdir(parents=True)
    server.pid_file.write_text(str(done.pid))
    assert server.pid() is None
    assert not server.pid_file.exists()
    assert server.stop() is False

    server.pid_file.write_text("not a pid")
    assert server.pid() is None


def test_the_tail_is_the_last_lines_of_each_log_that_exists(tmp_path):
    logs = (tmp_path / "a.log", tmp_path / "missing.log", tmp_path / "b.log")
    logs[0].write_text("".join(f"a{n}\n" for n in range(30)))
    logs[2].write_text("b0\nb1\n")
    server = ServerProcess("s", tmp_path / "s.pid", logs[0], logs)
    assert server.tail(3) == "a27\na28\na29\nb0\nb1"


def test_a_status_describes_where_it_runs_or_where_its_state_is():
    log = Path("/s/logs/x.log")
    running = ServerStatus("x", True, 42, "http://127.0.0.1:5", Path("/s"), log)
    assert running.describe() == "x: running (pid 42) at http://127.0.0.1:5; log /s/logs/x.log"
    stopped = ServerStatus("x", False, None, "", Path("/s"), log)
    assert stopped.describe() == "x: stopped (folder /s)"
    noted = ServerStatus("x", False, None, "", Path("/s"), log, "data dir /s", "x up")
    assert noted.describe() == "x: stopped (data dir /s); start it with `x up`"


def test_an_http_server_gets_a_recorded_port_and_answers_ready(tmp_path):
    """Python's http.server serves the folder it runs in: a file ``-/ready`` is its readiness
    endpoint."""
    (tmp_path / "-").mkdir()
    (tmp_path / "-" / "ready").write_text("ok")
    server = HttpServerProcess(
        "the web server",
        tmp_path / "web.pid",
        tmp_path / "web.log",
        tmp_path / "port",
        0,
        "set WEB_PORT",
    )
    assert (server.port, server.url, server.answers()) == (0, "", False)
    port = server.choose_port()
    assert server.port == port and server.port_file.read_text() == str(port)
    assert server.url == f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "http.server", "--bind", HOST, str(port)]
    pid = server.launch(command, lambda: server.answers(port), timeout=30, cwd=tmp_path)
    try:
        assert server.answers() and server.pid() == pid
    finally:
        server.stop()
    assert not server.answers()
    assert server.port == port  # kept for the next start
