"""A realistic mix of real-world log formats and envelopes, for the parse benchmarks.

Shares follow what a platform team's ``logs`` topic typically carries: the services' own JSON
logs (logstream, pino in containers, zap through Docker's json-file driver, ECS, Serilog,
OpenTelemetry), web servers' access logs (nginx main, Apache combined, ingress-nginx, Traefik) and
a syslog-forwarded nginx. Lines are shaped after the samples in tests/data/real_world; times are
near the wall clock so the stream's bounds accept them.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from logstream.devtools.generator import GeneratedRecord

SHARES = (
    ("logstream", 0.30),
    ("nginx_main", 0.15),
    ("combined", 0.10),
    ("cri_pino", 0.10),
    ("ecs", 0.08),
    ("syslog_nginx_timed", 0.07),
    ("docker_zap", 0.07),
    ("ingress_nginx", 0.05),
    ("serilog", 0.03),
    ("otel", 0.03),
    ("traefik", 0.02),
)
_PATHS = ("/", "/api/orders", "/api/orders/42", "/login", "/static/app.js", "/health")
_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari",
    "curl/8.5.0",
    "kube-probe/1.29",
)
_SERVICES = ("checkout", "payments", "search", "auth")


def iter_mix(count: int, seed: int, topic: str) -> Iterator[GeneratedRecord]:
    """``count`` records of the mix, seeded."""
    rng = random.Random(seed)  # noqa: S311 - seeded test traffic, not secrets
    names = [name for name, _ in SHARES]
    weights = [share for _, share in SHARES]
    for _ in range(count):
        name = rng.choices(names, weights)[0]
        now = time.time() - rng.random() * 30
        value = _RENDER[name](rng, now)
        yield GeneratedRecord(
            topic=topic,
            key=rng.choice(_SERVICES).encode() if rng.random() < 0.5 else None,
            value=value.encode(),
            truth=None,
            expected_reason=None,
            late=False,
            fmt=name,
        )


def _clf(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _iso(now: float) -> str:
    return (
        datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def _ip(rng: random.Random) -> str:
    return (
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )


def _combined(rng: random.Random, now: float) -> str:
    status = rng.choice((200, 200, 200, 304, 404, 500))
    return (
        f'{_ip(rng)} - - [{_clf(now)}] "{rng.choice(("GET", "POST"))} {rng.choice(_PATHS)} '
        f'HTTP/1.1" {status} {rng.randint(0, 50_000)} "-" "{rng.choice(_AGENTS)}"'
    )


def _logstream(rng: random.Random, now: float) -> str:
    return json.dumps(
        {
            "timestamp": _iso(now),
            "level": rng.choice(("INFO", "INFO", "WARN", "ERROR")),
            "service": rng.choice(_SERVICES),
            "message": "request handled",
            "ip_address": _ip(rng),
            "user_id": f"u{rng.randint(1, 5000)}",
            "request_id": f"{rng.getrandbits(64):016x}",
            "response_time": round(rng.random(), 3),
            "status_code": rng.choice((200, 201, 404, 500)),
        }
    )


def _pino(rng: random.Random, now: float) -> str:
    return json.dumps(
        {
            "level": rng.choice((30, 30, 40, 50)),
            "time": int(now * 1000),
            "pid": 1,
            "hostname": "api-7d9f",
            "name": rng.choice(_SERVICES),
            "req": {"id": rng.randint(1, 10**6), "method": "GET", "url": rng.choice(_PATHS)},
            "res": {"statusCode": rng.choice((200, 404))},
            "responseTime": rng.randint(1, 900),
            "msg": "request completed",
        }
    )


_RENDER = {
    "logstream": _logstream,
    "nginx_main": lambda rng, now: (
        f'{_combined(rng, now)} "{_ip(rng)}, 10.0.0.{rng.randint(1, 9)}"'
    ),
    "combined": _combined,
    "cri_pino": lambda rng, now: f"{_iso(now)} stdout F {_pino(rng, now)}",
    "ecs": lambda rng, now: json.dumps(
        {
            "@timestamp": _iso(now),
            "log.level": rng.choice(("info", "warn", "error")),
            "message": "GET /api/orders",
            "service": {"name": rng.choice(_SERVICES)},
            "http": {"request": {"method": "GET"}, "response": {"status_code": 200}},
            "event": {"duration": rng.randint(10**5, 10**9)},
            "ecs.version": "1.6.0",
        }
    ),
    "syslog_nginx_timed": lambda rng, now: (
        f"{datetime.fromtimestamp(now, UTC).strftime('%b %e %H:%M:%S')} web-1 nginx[2869]: "
        f"{_combined(rng, now)} {rng.random():.3f} {rng.random():.3f}"
    ),
    "docker_zap": lambda rng, now: json.dumps(
        {
            "log": json.dumps(
                {"level": "info", "ts": round(now, 6), "logger": "api", "msg": "served"}
            )
            + "\n",
            "stream": "stderr",
            "time": _iso(now),
        },
        separators=(",", ":"),  # as Docker writes it
    ),
    "ingress_nginx": lambda rng, now: (
        f"{_combined(rng, now)} {rng.randint(100, 900)} {rng.random():.3f} "
        f"[default-{rng.choice(_SERVICES)}-80] [] 10.1.0.{rng.randint(1, 9)}:8080 "
        f"{rng.randint(0, 9000)} {rng.random():.3f} 200 {rng.getrandbits(64):016x}"
    ),
    "serilog": lambda rng, now: json.dumps(
        {"@t": _iso(now), "@mt": "Handled {Path}", "Path": "/api", "Application": "billing"}
    ),
    "otel": lambda rng, now: json.dumps(
        {
            "timeUnixNano": str(int(now * 1e9)),
            "severityNumber": 9,
            "severityText": "INFO",
            "body": {"stringValue": "cart updated"},
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
        }
    ),
    "traefik": lambda rng, now: (
        f'{_combined(rng, now)} {rng.randint(1, 10**5)} "web@docker" "http://10.0.0.5:80" '
        f"{rng.randint(1, 900)}ms"
    ),
}
