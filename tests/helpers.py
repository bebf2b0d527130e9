"""Small test helpers shared across test modules."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
