"""Small test helpers shared across test modules."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kafka import KafkaProducer


def produce_json(bootstrap: str, topic: str, records: Iterable[dict], key_field: str) -> int:
    """Send each record as JSON with ``record[key_field]`` as the key; returns the count sent."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        key_serializer=lambda key: str(key).encode(),
        value_serializer=lambda value: json.dumps(value).encode(),
        linger_ms=20,
        batch_size=256 * 1024,
        acks="all",
    )
    sent = 0
    for record in records:
        producer.send(topic, key=record[key_field], value=record)
        sent += 1
    producer.flush()
    producer.close()
    return sent


def produce_with_ids(bootstrap: str, records: Iterable) -> list[str]:
    """Send generator records and return each one's ``event_id`` (``topic:partition:offset``),
    taken from the broker's acknowledgement: how a test links its truth to the stored rows."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024, acks="all"
    )
    futures = [producer.send(r.topic, key=r.key, value=r.value) for r in records]
    producer.flush()
    ids = []
    for future in futures:
        metadata = future.get(timeout=60)
        ids.append(f"{metadata.topic}:{metadata.partition}:{metadata.offset}")
    producer.close()
    return ids


#: environment variables of the alert channels; tests clear them so the machine's never leak in
CHANNEL_ENV = (
    "LOGSTREAM_ALERT_SINK",
    "LOGSTREAM_SLACK_WEBHOOK_URL",
    "LOGSTREAM_ALERT_WEBHOOK_URL",
    "LOGSTREAM_SMTP_HOST",
    "LOGSTREAM_SMTP_PORT",
    "LOGSTREAM_SMTP_USER",
    "LOGSTREAM_SMTP_PASSWORD",
    "LOGSTREAM_SMTP_FROM",
    "LOGSTREAM_SMTP_TO",
    "LOGSTREAM_SMTP_STARTTLS",
    "LOGSTREAM_SMTP_SSL",
    "AIRFLOW_CONN_LOGSTREAM_SLACK",
    "AIRFLOW_CONN_LOGSTREAM_WEBHOOK",
    "AIRFLOW_CONN_LOGSTREAM_SMTP",
)


class Receiver:
    """A loopback HTTP server that records every POST and answers ``status`` after ``delay_s``."""

    def __init__(self, status: int = 200, delay_s: float = 0.0) -> None:
        self.status = status
        self.delay_s = delay_s
        self.requests: list[dict] = []
        self._closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                if receiver.delay_s:
                    receiver._closing.wait(receiver.delay_s)
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (timeout): nothing to answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()

    def json_bodies(self) -> list[dict]:
        return [json.loads(request["body"]) for request in self.requests]


def alertmanager_test_config(
    folder: Path, hook_url: str, group_wait: str = "1s", group_interval: str = "2s"
) -> Path:
    """The shipped deploy/alertmanager config with its receivers pointed at ``hook_url`` (Slack
    at ``/slack``, the webhook at ``/webhook``) and its waits shortened; its path in ``folder``.
    Each substitution must hit: a changed shipped file fails here, not silently."""
    from logstream.config import PROJECT_ROOT

    shipped = PROJECT_ROOT / "deploy" / "alertmanager"
    text = (shipped / "alertmanager.yml").read_text()
    for old, new in (
        ("group_wait: 30s", f"group_wait: {group_wait}"),
        ("group_wait: 10s", f"group_wait: {group_wait}"),
        ("group_interval: 5m", f"group_interval: {group_interval}"),
        ("http://127.0.0.1:5001/logstream/alerts", f"{hook_url}/webhook"),
    ):
        assert old in text, f"{old!r} is no longer in the shipped alertmanager.yml"
        text = text.replace(old, new)
    (folder / "secrets").mkdir(parents=True)
    (folder / "secrets" / "slack_webhook_url").write_text(f"{hook_url}/slack")
    (folder / "secrets" / "webhook_token").write_text("test-token")
    (folder / "secrets" / "smtp_password").write_text("unused")
    shutil.copy(shipped / "logstream.tmpl", folder / "logstream.tmpl")
    (folder / "alertmanager.yml").write_text(text)
    return folder / "alertmanager.yml"
