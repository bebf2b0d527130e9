"""Seeded, realistic traffic for the ``logs`` and ``user-events`` topics (SPEC §3, §10).

The generator simulates a clock that starts at ``GeneratorConfig.start`` and advances at
``events_per_second`` of event time. At every tick one record is emitted. Most records are normal
requests of a handful of services with their own latency profiles; on top of that the generator
plays the scenarios the pipeline must see:

- an error burst: one service answers ~40 % 5xx for two minutes (503 fast-fails, 504 timeouts);
- a DDoS burst: one IP sends > 150 requests within one aligned minute to one service, from two
  user accounts;
- a scanner: one anonymous IP crawls every service (> 1000 requests in one 5-minute window);
- late records, uploaded in batches per user (a phone coming back online): each is between
  ``late_min_s`` and ``late_max_s`` behind the newest event time emitted so far (and so at least
  that far behind the clock);
- malformed records of every quarantine reason (``MALFORMED_KINDS``);
- a user-events stream with one high-activity user.

Scenarios replace normal traffic inside their interval and take at most a share of it (a quarter
for the DDoS, a tenth for the scanner), so short runs get smaller bursts: at the default 200
events/s, ``count=60_000`` (five minutes) plays every scenario at full size. Late records start
after the first 10 % of the stream, so the stream's watermark has moved before they arrive.

Normal records are emitted in clock order; their event time is the clock minus a small delivery
delay of at most ``max_disorder_s`` (< 30 s), so the stream is never more than 30 s out of order.

Every record carries its ``truth``: the fields the parser must produce for it (``None`` for
malformed ones, which carry ``expected_reason`` instead). Timestamps are whole milliseconds
everywhere (whole seconds for the formats that only have seconds), so the truth is exact.

Everything derives from ``random.Random`` seeded with the config's seed: the same config (with an
explicit ``start``) gives byte-identical records.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import math
import random
import sys
import time
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TextIO

from logstream.errors import ConfigError, ServiceError
from logstream.timeutil import EPOCH, from_ms, to_ms

_MINUTE_MS = 60_000

#: Malformed kinds of log records; each is the ``quarantine.reason`` the parser must give it. (A
#: log record without a service is not one: it takes its key's or the default service.)
MALFORMED_KINDS: tuple[str, ...] = (
    "empty",
    "oversized",
    "invalid_json",
    "unrecognized_format",
    "partial_line",
    "missing_timestamp",
    "invalid_timestamp",
    "timestamp_out_of_range",
    "invalid_field",
)
#: Malformed kinds of user events (JSON only; user_id and action are required).
USER_EVENT_MALFORMED_KINDS: tuple[str, ...] = (
    "empty",
    "oversized",
    "invalid_json",
    "missing_timestamp",
    "invalid_timestamp",
    "timestamp_out_of_range",
    "missing_field",
    "invalid_field",
)

#: Record layouts, in ``GeneratedRecord.fmt``.
JSON_FORMATS = ("json_iso", "json_iso_offset", "json_epoch_s", "json_epoch_ms")
ACCESS_FORMATS = ("apache_combined", "apache_common", "nginx_combined")


@dataclass(frozen=True)
class ServiceProfile:
    """A service's traffic share and latency: lognormal around ``median_s`` plus a Pareto tail."""

    name: str
    weight: float
    median_s: float
    sigma: float
    paths: tuple[str, ...]
    tail_share: float = 0.0  # share of requests drawn from the heavy tail
    tail_min_s: float = 2.0  # where the tail starts (Pareto, alpha 1.5)


DEFAULT_SERVICES: tuple[ServiceProfile, ...] = (
    ServiceProfile("auth", 0.18, 0.05, 0.35, ("/api/auth/login", "/api/auth/refresh")),
    ServiceProfile("search", 0.30, 0.30, 0.50, ("/api/search?q=shoes", "/api/search?q=lamp")),
    ServiceProfile(
        "checkout", 0.12, 0.80, 0.45, ("/api/checkout", "/api/checkout/confirm"), 0.03, 2.5
    ),
    ServiceProfile(
        "payments", 0.10, 0.45, 0.40, ("/api/payments/authorize", "/api/payments/capture")
    ),
    ServiceProfile("profile", 0.14, 0.12, 0.40, ("/api/profile/me", "/api/profile/settings")),
    ServiceProfile("cart", 0.10, 0.08, 0.40, ("/api/cart", "/api/cart/items")),
    ServiceProfile("notifications", 0.06, 0.03, 0.50, ("/api/notifications",)),
)


@dataclass
class GeneratorConfig:
    """What to generate. Shares are of ``count``; times are event time of the simulated clock."""

    seed: int = 0
    count: int = 10_000  # log records in total (normal, bursts, late and malformed)
    start: datetime | None = None  # default: now floored to the minute minus the span
    events_per_second: float = 200.0
    late_share: float = 0.02
    malformed_share: float = 0.01
    access_share: float = 0.10  # share of valid records written as Apache/nginx access lines
    late_min_s: float = 900.0  # a late record is at least this far behind the stream ...
    late_max_s: float = 10_800.0  # ... and at most this far behind the clock
    max_disorder_s: float = 25.0  # delivery delay of normal records (must stay < 30 s)
    max_record_bytes: int = 65_536  # "oversized" records are larger than this
    services: tuple[ServiceProfile, ...] = DEFAULT_SERVICES
    error_burst_service: str | None = "payments"
    error_burst_s: int = 120
    error_burst_share: float = 0.4  # share of 5xx in the burst
    ddos_requests: int = 180  # within one aligned minute, from one IP and two users
    scanner_requests: int = 1_100  # within one aligned 5-minute window, every service
    # where the scenarios sit, as shares of the span: the error burst starts at the first aligned
    # minute after ``error_burst_at``, the DDoS fills the aligned minute that holds ``ddos_at``,
    # the scanner the aligned 5-minute window that holds ``scanner_at``
    error_burst_at: float = 0.35
    ddos_at: float = 0.75
    scanner_at: float = 0.5
    high_activity_events: int = 75  # user events of one user within 150 s
    logs_topic: str = "logs"
    user_events_topic: str = "user-events"

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ConfigError(f"count={self.count} must be >= 0")
        if self.events_per_second <= 0:
            raise ConfigError(f"events_per_second={self.events_per_second} must be > 0")
        shares = ("late_share", "malformed_share", "access_share", "error_burst_share")
        for name in (*shares, "error_burst_at", "ddos_at", "scanner_at"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}={value} must be between 0 and 1")
        if self.late_share + self.malformed_share > 0.5:
            raise ConfigError(
                f"late_share + malformed_share = {self.late_share + self.malformed_share} "
                "leaves too little normal traffic; keep it <= 0.5"
            )
        if not 0 < self.late_min_s < self.late_max_s:
            raise ConfigError("need 0 < late_min_s < late_max_s")
        if not 0 <= self.max_disorder_s < 30:
            raise ConfigError(f"max_disorder_s={self.max_disorder_s} must be in [0, 30)")
        if not self.services:
            raise ConfigError("at least one service profile is needed")
        names = [profile.name for profile in self.services]
        if self.error_burst_service is not None and self.error_burst_service not in names:
            raise ConfigError(
                f"error_burst_service={self.error_burst_service!r} is not one of {names}"
            )

    @property
    def span(self) -> timedelta:
        """Event-time span of the log stream: count / events_per_second."""
        return timedelta(milliseconds=_span_ms(self))

    def resolved_start(self, now: datetime | None = None) -> datetime:
        """``start`` as an aware UTC datetime at ms precision (naive values are taken as UTC)."""
        return from_ms(_start_ms(self, now))


@dataclass(frozen=True)
class GeneratedRecord:
    """One Kafka record plus what the pipeline must make of it."""

    topic: str
    key: bytes | None
    value: bytes
    truth: dict[str, Any] | None  # the parsed event's fields; None for malformed records
    expected_reason: str | None  # schemas.REASONS code for malformed records
    late: bool  # generated as a late record
    fmt: str = "json_iso"  # JSON_FORMATS, ACCESS_FORMATS, "user_event" or "malformed"
    clock: datetime | None = None  # the simulated clock when the record was emitted


# -- time helpers -----------------------------------------------------------------------------


def _span_ms(config: GeneratorConfig) -> int:
    return round(config.count * 1000 / config.events_per_second)


def _start_ms(
    config: GeneratorConfig, now: datetime | None = None, span_ms: int | None = None
) -> int:
    if config.start is not None:
        return to_ms(config.start)
    now_ms = to_ms(now or datetime.now(UTC))
    return now_ms // _MINUTE_MS * _MINUTE_MS - (_span_ms(config) if span_ms is None else span_ms)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _iso(ms: int, offset_minutes: int = 0) -> str:
    """ISO-8601 with milliseconds: ``Z`` for UTC, ``+hh:mm`` otherwise."""
    local = from_ms(ms).astimezone(timezone(timedelta(minutes=offset_minutes)))
    text = local.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if offset_minutes == 0 else text


def _clf_time(ms: int, offset_minutes: int) -> str:
    """Access-log time: ``25/Nov/2026:10:00:00 +0000`` (month names fixed, not from the locale)."""
    local = from_ms(ms).astimezone(timezone(timedelta(minutes=offset_minutes)))
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return (
        f"{local.day:02d}/{_MONTHS[local.month - 1]}/{local.year}:"
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d} {sign}{hours:02d}{minutes:02d}"
    )


# -- the plan: which tick plays which part ----------------------------------------------------

_NORMAL, _LATE, _MALFORMED, _DDOS, _SCANNER, _HOT_USER = range(6)


@dataclass
class _Plan:
    """Roles per tick, decided up front so records can then be built one by one."""

    start_ms: int
    span_ms: int
    count: int
    roles: bytearray
    malformed: dict[int, str] = field(default_factory=dict)
    late_user: dict[int, str | None] = field(default_factory=dict)

    def tick_ms(self, rng: random.Random, index: int) -> int:
        """The clock at tick ``index``: a jittered grid, so ticks are ordered and evenly spread."""
        return self.start_ms + int((index + rng.random()) * self.span_ms / self.count)

    def ticks_within(self, lo_ms: int, hi_ms: int) -> range:
        """Ticks whose clock is certainly inside [lo_ms, hi_ms)."""
        if self.span_ms <= 0:
            return range(0)
        first = -(-(lo_ms - self.start_ms) * self.count // self.span_ms)
        end = (hi_ms - self.start_ms) * self.count // self.span_ms
        return range(max(first, 0), min(end, self.count))

    def claim(
        self, rng: random.Random, ticks: range, wanted: int, role: int, max_share: float
    ) -> list[int]:
        """Give ``role`` to up to ``wanted`` random free ticks, at most ``max_share`` of them."""
        wanted = min(wanted, int(len(ticks) * max_share))
        candidates = rng.sample(ticks, min(len(ticks), 2 * wanted))
        chosen = sorted([i for i in candidates if self.roles[i] == _NORMAL][:wanted])
        for index in chosen:
            self.roles[index] = role
        return chosen

    def place_late_batches(self, rng: random.Random, wanted: int, users: Sequence[str]) -> None:
        """Late records come in batches of one user (after the first 10 % of the stream)."""
        first = self.count // 10
        attempts, max_attempts = 0, 100 + 10 * wanted
        while wanted > 0 and first < self.count and attempts < max_attempts:
            attempts += 1
            size = min(wanted, _late_batch_size(rng))
            user = rng.choice(users)
            index = rng.randrange(first, self.count)
            while size > 0 and index < self.count:
                if self.roles[index] == _NORMAL:
                    self.roles[index] = _LATE
                    self.late_user[index] = user
                    size -= 1
                    wanted -= 1
                index += 1

    def place_malformed(self, rng: random.Random, wanted: int, kinds: Sequence[str]) -> None:
        """Malformed records at random free ticks, every kind in turn (so all appear)."""
        kind_list = [kinds[i % len(kinds)] for i in range(wanted)]
        rng.shuffle(kind_list)
        attempts = 0
        while kind_list and attempts < 100 + 20 * wanted:
            attempts += 1
            index = rng.randrange(self.count)
            if self.roles[index] == _NORMAL:
                self.roles[index] = _MALFORMED
                self.malformed[index] = kind_list.pop()


def _delivery_delay_ms(rng: random.Random, max_disorder_s: float) -> int:
    """Delay between the clock and a normal record's event time: mostly < 0.5 s, rarely more."""
    longest = int(max_disorder_s * 1000) + 1
    draw = rng.random()
    if draw < 0.90:
        return rng.randrange(min(500, longest))
    if draw < 0.99:
        return rng.randrange(min(5_000, longest))
    return rng.randrange(longest)


def _late_event_ms(
    rng: random.Random, config: GeneratorConfig, clock_ms: int, newest_ms: int | None
) -> int:
    """A late event time: uniformly late_min..late_max behind the clock, and at least late_min
    behind the newest event time emitted so far (which is never ahead of the clock)."""
    lateness = int(rng.uniform(config.late_min_s, config.late_max_s - 1) * 1000)
    reference = clock_ms if newest_ms is None else min(newest_ms, clock_ms)
    return min(reference - int(config.late_min_s * 1000), clock_ms - lateness)


def _late_batch_size(rng: random.Random) -> int:
    draw = rng.random()
    if draw < 0.6:
        return 1
    if draw < 0.85:
        return rng.randint(2, 4)
    return rng.randint(6, 12)


# -- populations ------------------------------------------------------------------------------


def _public_ip(rng: random.Random) -> str:
    first = rng.choice((23, 31, 45, 52, 66, 73, 81, 89, 91, 103, 121, 142, 176, 185, 203, 211))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


@dataclass
class _Population:
    """Users with their home IPs (some behind a shared NAT) and anonymous visitors' IPs."""

    users: list[str]
    home_ip: dict[str, str]
    anonymous_ips: list[str]

    @classmethod
    def build(cls, rng: random.Random, size: int, prefix: str = "user") -> _Population:
        width = max(5, len(str(size)))
        users = [f"{prefix}-{n:0{width}d}" for n in range(1, size + 1)]
        home_ip: dict[str, str] = {}
        nat_ip = _public_ip(rng)
        nat_left = 0
        for user in users:
            if rng.random() < 0.05:  # a small office NAT: up to 8 users share one address
                if nat_left == 0:
                    nat_ip, nat_left = _public_ip(rng), 8
                home_ip[user] = nat_ip
                nat_left -= 1
            else:
                home_ip[user] = _public_ip(rng)
        anonymous = [_public_ip(rng) for _ in range(2 * size)]
        return cls(users, home_ip, anonymous)


_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "okhttp/4.12.0",
    "shop-ios/5.3.1 (iPhone15,2; iOS 17.5)",
)
_SCANNER_AGENT = "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)"
_REFERRERS = (
    "https://shop.example.com/",
    "https://shop.example.com/cart",
    "https://www.google.com/",
    "https://m.example.com/home",
)
_STATUS_WEIGHTS = (
    (200, 900),
    (201, 20),
    (204, 10),
    (304, 20),
    (400, 5),
    (401, 5),
    (403, 2),
    (404, 8),
    (429, 2),
    (500, 3),
    (502, 1),
    (503, 1),
    (504, 1),
)
_ERROR_CODES = {
    400: "E_VALIDATION",
    401: "E_UNAUTHENTICATED",
    403: "E_FORBIDDEN",
    404: "E_NOT_FOUND",
    429: "E_RATE_LIMITED",
    500: "E_INTERNAL",
    502: "E_BAD_GATEWAY",
    503: "E_UNAVAILABLE",
    504: "E_TIMEOUT",
}
_BACKGROUND_MESSAGES = (
    "connection pool resized",
    "cache refreshed",
    "config reloaded",
    "slow consumer detected",
)
_WORDS = (
    "heartbeat",
    "worker",
    "started",
    "queue",
    "flush",
    "retrying",
    "shard",
    "ok",
    "pid",
    "gc",
    "pause",
    "disk",
)


class _Weighted:
    """A fixed weighted choice, drawn with one ``rng.random()``."""

    def __init__(self, pairs: Sequence[tuple[Any, float]]) -> None:
        self.items = [item for item, _ in pairs]
        self.cumulative = list(itertools.accumulate(weight for _, weight in pairs))

    def __call__(self, rng: random.Random) -> Any:
        return self.items[bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]


_STATUS = _Weighted(_STATUS_WEIGHTS)
_ATTACK_STATUS = _Weighted(((401, 0.6), (429, 0.3), (200, 0.1)))
_SCAN_STATUS = _Weighted(((404, 0.7), (403, 0.2), (200, 0.1)))
_BURST_STATUS = _Weighted(((503, 0.5), (500, 0.3), (504, 0.2)))
_JSON_LAYOUT = _Weighted(
    (("json_iso", 0.7), ("json_iso_offset", 0.1), ("json_epoch_s", 0.1), ("json_epoch_ms", 0.1))
)
_ACCESS_LAYOUT = _Weighted(
    (("apache_combined", 0.45), ("apache_common", 0.10), ("nginx_combined", 0.45))
)


def _response_time(rng: random.Random, profile: ServiceProfile) -> float:
    """Seconds at ms resolution: lognormal body, optional Pareto tail, at least 1 ms."""
    if profile.tail_share and rng.random() < profile.tail_share:
        seconds = profile.tail_min_s * rng.paretovariate(1.5)
    else:
        seconds = profile.median_s * math.exp(rng.gauss(0.0, profile.sigma))
    return max(0.001, round(min(seconds, 60.0), 3))


# -- log records ------------------------------------------------------------------------------


class _LogBuilder:
    """Builds log records tick by tick from the plan; all randomness comes from ``rng``."""

    def __init__(self, config: GeneratorConfig, rng: random.Random, plan: _Plan) -> None:
        self.config = config
        self.rng = rng
        self.plan = plan
        self.profiles = {profile.name: profile for profile in config.services}
        self.pick_service = _Weighted([(p.name, p.weight) for p in config.services])
        self.service_names = [p.name for p in config.services]
        per_minute = config.events_per_second * 60
        self.people = _Population.build(rng, max(1000, math.ceil(per_minute / 10)))
        # error burst: aligned minutes from the first one after error_burst_at of the span
        burst_at = plan.start_ms + int(plan.span_ms * config.error_burst_at)
        self.error_burst = (
            -(-burst_at // _MINUTE_MS) * _MINUTE_MS,
            -(-burst_at // _MINUTE_MS) * _MINUTE_MS + config.error_burst_s * 1000,
        )
        # DDoS: one IP, two accounts, one service, inside the aligned minute at ddos_at of the span
        ddos_at = plan.start_ms + int(plan.span_ms * config.ddos_at)
        ddos_minute = ddos_at // _MINUTE_MS * _MINUTE_MS
        self.ddos_ip = _public_ip(rng)
        self.ddos_users = rng.sample(self.people.users, 2)
        self.ddos_service = "auth" if "auth" in self.profiles else config.services[0].name
        plan.claim(
            rng,
            plan.ticks_within(ddos_minute + 5_000, ddos_minute + 50_000),
            config.ddos_requests,
            _DDOS,
            max_share=0.25,
        )
        # scanner: one anonymous IP, every service, the aligned 5-minute window at scanner_at
        scanner_at = plan.start_ms + int(plan.span_ms * config.scanner_at)
        window = scanner_at // (5 * _MINUTE_MS) * (5 * _MINUTE_MS)
        self.scanner_ip = _public_ip(rng)
        plan.claim(
            rng,
            plan.ticks_within(window + 5_000, window + 5 * _MINUTE_MS - 5_000),
            config.scanner_requests,
            _SCANNER,
            max_share=0.10,
        )
        plan.place_late_batches(rng, round(config.count * config.late_share), self.people.users)
        plan.place_malformed(rng, round(config.count * config.malformed_share), MALFORMED_KINDS)
        self.newest_ms: int | None = None  # newest valid non-late event time emitted so far

    # one record per tick
    def record(self, index: int) -> GeneratedRecord:
        rng, config = self.rng, self.config
        clock = self.plan.tick_ms(rng, index)
        role = self.plan.roles[index]
        if role == _LATE:
            event_ms = _late_event_ms(rng, config, clock, self.newest_ms)
        elif role in (_DDOS, _SCANNER):
            event_ms = clock - rng.randrange(2_000)
        else:
            event_ms = clock - self._delivery_delay_ms()

        if role == _DDOS:
            request = self._request(event_ms, service=self.ddos_service, attack=True)
            record = self._render(request, event_ms, fmt=self._json_format())
        elif role == _SCANNER:
            request = self._request(event_ms, service=rng.choice(self.service_names), scan=True)
            record = self._render(request, event_ms, fmt=self._any_format())
        elif role == _MALFORMED:
            record = self._malformed(self.plan.malformed[index], event_ms)
        else:
            late_user = self.plan.late_user.get(index) if role == _LATE else None
            if rng.random() < 0.02 and role != _LATE:
                request = self._background()
                record = self._render(request, event_ms, fmt=self._json_format())
            else:
                request = self._request(event_ms, user=late_user)
                record = self._render(request, event_ms, fmt=self._any_format())
        if record.truth is not None and role != _LATE:
            event_time_ms = to_ms(record.truth["event_time"])
            if self.newest_ms is None or event_time_ms > self.newest_ms:
                self.newest_ms = event_time_ms
        return dataclasses.replace(record, late=role == _LATE, clock=from_ms(clock))

    def _delivery_delay_ms(self) -> int:
        return _delivery_delay_ms(self.rng, self.config.max_disorder_s)

    def _json_format(self) -> str:
        return _JSON_LAYOUT(self.rng)

    def _any_format(self) -> str:
        if self.rng.random() < self.config.access_share:
            return _ACCESS_LAYOUT(self.rng)
        return self._json_format()

    def _request(
        self,
        event_ms: int,
        *,
        service: str | None = None,
        user: str | None = None,
        attack: bool = False,
        scan: bool = False,
    ) -> dict[str, Any]:
        """The semantic fields of one HTTP request (rendering picks the layout)."""
        rng = self.rng
        service = service or self.pick_service(rng)
        profile = self.profiles[service]
        if attack:
            user_id: str | None = rng.choice(self.ddos_users)
            ip = self.ddos_ip
        elif scan:
            user_id, ip = None, self.scanner_ip
        else:
            if user is None and rng.random() < 0.85:
                user = rng.choice(self.people.users)
            user_id = user
            ip = self.people.home_ip[user] if user else rng.choice(self.people.anonymous_ips)
        response_time = _response_time(rng, profile)
        lo, hi = self.error_burst
        if attack:
            status = _ATTACK_STATUS(rng)
        elif scan:
            status = _SCAN_STATUS(rng)
        elif (
            service == self.config.error_burst_service
            and lo <= event_ms < hi
            and (rng.random() < self.config.error_burst_share)
        ):
            status = _BURST_STATUS(rng)
            if status == 503:
                response_time = round(rng.uniform(0.002, 0.02), 3)  # fail fast
            elif status == 504:
                response_time = round(rng.uniform(5.0, 10.0), 3)  # upstream timeout
        else:
            status = _STATUS(rng)
        method = "GET" if rng.random() < 0.7 or scan else "POST"
        path = rng.choice(profile.paths)
        if scan:  # probing for leaked files under every service
            probe = rng.choice((".env", "wp-admin", "admin.php", ".git/config"))
            path = f"{path.split('?')[0]}/{probe}"
        level = "INFO" if status < 400 else "WARN" if status < 500 else "ERROR"
        if level == "INFO" and rng.random() < 0.03:
            level = "DEBUG"
        return {
            "service": service,
            "user_id": user_id,
            "ip_address": ip,
            "request_id": f"{rng.getrandbits(64):016x}",
            "http_method": method,
            "path": path,
            "protocol": "HTTP/2.0" if rng.random() < 0.4 else "HTTP/1.1",
            "status_code": status,
            "response_time": response_time,
            "bytes_sent": 0 if status in (204, 304) else rng.randrange(200, 60_000),
            "referrer": rng.choice(_REFERRERS),
            "user_agent": _SCANNER_AGENT if scan else rng.choice(_USER_AGENTS),
            "level": level,
            "message": f"{method} {path} {status}",
            "error_code": _ERROR_CODES.get(status),
        }

    def _background(self) -> dict[str, Any]:
        """A log line that is not a request: no status, response time, user or IP."""
        rng = self.rng
        return {
            "service": self.pick_service(rng),
            "user_id": None,
            "ip_address": None,
            "request_id": None,
            "status_code": None,
            "response_time": None,
            "level": rng.choice(("INFO", "INFO", "WARN")),
            "message": rng.choice(_BACKGROUND_MESSAGES),
            "error_code": None,
        }

    def _render(self, request: dict[str, Any], event_ms: int, fmt: str) -> GeneratedRecord:
        if fmt in ACCESS_FORMATS:
            return self._render_access(request, event_ms, fmt)
        return self._render_json(request, event_ms, fmt)

    def _json_document(self, request: dict[str, Any], event_ms: int, fmt: str) -> tuple[dict, int]:
        """The JSON object of a log record and the event time it states (ms)."""
        rng = self.rng
        if fmt == "json_epoch_s":
            event_ms = event_ms // 1000 * 1000
            timestamp: Any = event_ms // 1000
        elif fmt == "json_epoch_ms":
            timestamp = event_ms
        elif fmt == "json_iso_offset":
            timestamp = _iso(event_ms, rng.choice((0, 540, -300, 330)))
            if timestamp.endswith("Z"):
                timestamp = timestamp[:-1] + "+00:00"
        else:
            timestamp = _iso(event_ms)
        document: dict[str, Any] = {"timestamp": timestamp, "level": request["level"]}
        document["service"] = request["service"]
        document["message"] = request["message"]
        for name in ("ip_address", "user_id", "request_id", "response_time", "status_code"):
            value = request[name]
            if value is not None or (name == "user_id" and rng.random() < 0.5):
                document[name] = value  # anonymous users: the field is null or absent
        if request["error_code"] is not None:
            document["error_code"] = request["error_code"]
        if rng.random() < 0.2:  # unknown fields: kept by the parser in `extra`
            document["host"] = f"{request['service']}-{rng.randrange(1, 7)}"
        if rng.random() < 0.1:
            document["region"] = rng.choice(("eu-west-1", "us-east-1", "ap-northeast-2"))
        return document, event_ms

    def _render_json(self, request: dict[str, Any], event_ms: int, fmt: str) -> GeneratedRecord:
        document, event_ms = self._json_document(request, event_ms, fmt)
        truth = {
            "event_time": from_ms(event_ms),
            "level": request["level"],
            "service": request["service"],
            "message": request["message"],
            "ip_address": request["ip_address"],
            "user_id": request["user_id"],
            "request_id": request["request_id"],
            "response_time": request["response_time"],
            "status_code": request["status_code"],
            "error_code": request["error_code"],
        }
        return GeneratedRecord(
            topic=self.config.logs_topic,
            key=request["service"].encode(),
            value=_dumps(document),
            truth=truth,
            expected_reason=None,
            late=False,
            fmt=fmt,
        )

    def _render_access(self, request: dict[str, Any], event_ms: int, fmt: str) -> GeneratedRecord:
        """Apache Common/Combined or nginx combined + $request_time; service = the Kafka key."""
        rng = self.rng
        event_ms = event_ms // 1000 * 1000  # access logs have whole seconds
        offset = rng.choice((0, 0, 0, 540, -300))
        line = (
            f"{request['ip_address']} - - [{_clf_time(event_ms, offset)}] "
            f'"{request["http_method"]} {request["path"]} {request["protocol"]}" '
            f"{request['status_code']} {request['bytes_sent']}"
        )
        combined = fmt != "apache_common"
        if combined:
            line += f' "{request["referrer"]}" "{request["user_agent"]}"'
        with_time = fmt == "nginx_combined"
        if with_time:
            line += f" {request['response_time']:.3f}"
        truth = {
            "event_time": from_ms(event_ms),
            "service": request["service"],
            "ip_address": request["ip_address"],
            "user_id": None,
            "request_id": None,
            "response_time": request["response_time"] if with_time else None,
            "status_code": request["status_code"],
            "http_method": request["http_method"],
            "path": request["path"],
            "protocol": request["protocol"],
            "bytes_sent": request["bytes_sent"],
            "referrer": request["referrer"] if combined else None,
            "user_agent": request["user_agent"] if combined else None,
        }
        return GeneratedRecord(
            topic=self.config.logs_topic,
            key=request["service"].encode(),
            value=line.encode(),
            truth=truth,
            expected_reason=None,
            late=False,
            fmt=fmt,
        )

    def _malformed(self, kind: str, event_ms: int) -> GeneratedRecord:
        """A record the parser must quarantine with reason ``kind``; everything else is valid."""
        rng = self.rng
        request = self._request(event_ms)
        document, _ = self._json_document(request, event_ms, "json_iso")
        key: bytes | None = request["service"].encode()
        if kind == "empty":
            value = rng.choice((b"", b"   ", b" \t "))
        elif kind == "oversized":
            document["stack_trace"] = _stack_trace(rng, self.config.max_record_bytes)
            value = _dumps(document)
        elif kind == "invalid_json":
            value = _invalid_json(rng, document)
        elif kind == "unrecognized_format":
            value = _random_text(rng)
        elif kind == "missing_timestamp":
            del document["timestamp"]
            value = _dumps(document)
        elif kind == "invalid_timestamp":
            document["timestamp"] = rng.choice(
                ("not-a-timestamp", "2026-13-45T99:99:99Z", "yesterday at noon")
            )
            value = _dumps(document)
        elif kind == "timestamp_out_of_range":
            document["timestamp"] = _out_of_range_timestamp(rng, event_ms)
            value = _dumps(document)
        elif kind == "partial_line":
            # a container runtime split a long line: CRI's "P" tag, the rest in the next record
            text = _dumps(document).decode()
            cut = rng.randrange(1, len(text))
            value = f"{_iso_nanos(event_ms)} stdout P {text[:cut]}".encode()
        elif kind == "invalid_field":
            if rng.random() < 0.5:
                document["status_code"] = "abc"
            else:
                document["response_time"] = -1
            value = _dumps(document)
        else:  # pragma: no cover - MALFORMED_KINDS is closed
            raise ValueError(kind)
        return GeneratedRecord(
            topic=self.config.logs_topic,
            key=key,
            value=value,
            truth=None,
            expected_reason=kind,
            late=False,
            fmt="malformed",
        )


def _iso_nanos(event_ms: int) -> str:
    """RFC 3339 with nanoseconds, as a container runtime stamps its lines."""
    return from_ms(event_ms).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _stack_trace(rng: random.Random, max_record_bytes: int) -> str:
    """A Java-style stack trace long enough to push the record over ``max_record_bytes``."""
    target = max_record_bytes + rng.randrange(1, 4_096)
    frames = ["java.lang.IllegalStateException: connection reset"]
    size = len(frames[0])
    while size < target:
        frame = (
            f"\tat com.example.{rng.choice(_WORDS)}.{rng.choice(_WORDS).title()}Handler"
            f".handle(Handler.java:{rng.randrange(20, 900)})"
        )
        frames.append(frame)
        size += len(frame) + 1
    return "\n".join(frames)


def _invalid_json(rng: random.Random, document: dict[str, Any]) -> bytes:
    """Truncated JSON (a cut-off write) or a Python dict repr: starts like JSON, is not JSON."""
    text = json.dumps(document, separators=(",", ":"))
    if rng.random() < 0.7:
        return text[: rng.randrange(len(text) // 3, len(text) - 1)].encode()
    return text.replace('"', "'").encode()


def _random_text(rng: random.Random) -> bytes:
    """Neither JSON nor an access-log line: free text or a syslog line."""
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(3, 12)))
    if rng.random() < 0.5:
        return words.encode()
    return f"<134>Nov 25 10:00:00 host app[{rng.randrange(100, 9999)}]: {words}".encode()


def _out_of_range_timestamp(rng: random.Random, event_ms: int) -> Any:
    """The event's time of day, but in 1990 or 2100 (as ISO, epoch seconds or epoch millis)."""
    moment = from_ms(event_ms)
    moment = moment.replace(year=rng.choice((1990, 2100)), day=min(moment.day, 28))
    layout = rng.random()
    if layout < 0.6:
        return _iso(to_ms(moment))
    if layout < 0.8:
        return to_ms(moment) // 1000
    return to_ms(moment)


# -- user events ------------------------------------------------------------------------------

_ACTIONS = (
    ("view", 45.0),
    ("click", 25.0),
    ("search", 10.0),
    ("add_to_cart", 8.0),
    ("purchase", 4.0),
    ("login", 4.0),
    ("logout", 4.0),
)


_ACTION = _Weighted(_ACTIONS)


def _action_value(rng: random.Random, action: str) -> float | None:
    if action == "logout":
        return None
    if action == "purchase":
        return round(rng.uniform(5.0, 500.0), 2)
    if action == "add_to_cart":
        return round(rng.uniform(5.0, 200.0), 2)
    if action == "login":
        return 1.0
    return round(rng.uniform(1.0, 100.0), 2)


class _UserEventBuilder:
    """User events over the same simulated span as the logs, one high-activity user included."""

    def __init__(
        self, config: GeneratorConfig, rng: random.Random, plan: _Plan, count: int
    ) -> None:
        self.config = config
        self.rng = rng
        self.plan = plan
        span_s = max(plan.span_ms / 1000, 1.0)
        # enough users that a normal one stays far below 50 events per 5 minutes
        self.people = _Population.build(rng, max(200, math.ceil(count / span_s * 300 / 15)))
        self.sessions: dict[str, str] = {}
        self.hot_user = rng.choice(self.people.users)
        burst_s = min(150.0, span_s * 0.5)
        burst_at = plan.start_ms + int(plan.span_ms * 0.4)
        plan.claim(
            rng,
            plan.ticks_within(burst_at, burst_at + int(burst_s * 1000)),
            config.high_activity_events,
            _HOT_USER,
            max_share=0.5,
        )
        plan.place_late_batches(rng, round(count * config.late_share), self.people.users)
        plan.place_malformed(rng, round(count * config.malformed_share), USER_EVENT_MALFORMED_KINDS)
        self.newest_ms: int | None = None

    def record(self, index: int) -> GeneratedRecord:
        rng, config = self.rng, self.config
        clock = self.plan.tick_ms(rng, index)
        role = self.plan.roles[index]
        if role == _LATE:
            event_ms = _late_event_ms(rng, config, clock, self.newest_ms)
            user = self.plan.late_user[index] or rng.choice(self.people.users)
        elif role == _HOT_USER:
            event_ms = clock - rng.randrange(500)
            user = self.hot_user
        else:
            event_ms = clock - _delivery_delay_ms(rng, config.max_disorder_s)
            user = rng.choice(self.people.users)
        if user not in self.sessions or rng.random() < 0.05:
            self.sessions[user] = f"sess-{rng.getrandbits(48):012x}"
        action = _ACTION(rng)
        if role == _HOT_USER:
            action = rng.choice(("click", "view", "click", "add_to_cart"))
        value = _action_value(rng, action)
        document = {
            "timestamp": event_ms,
            "user_id": user,
            "action": action,
            "value": value,
            "session_id": self.sessions[user],
            "ip_address": self.people.home_ip[user],
        }
        if role == _MALFORMED:
            record = self._malformed(self.plan.malformed[index], document)
        else:
            truth = {
                "event_time": from_ms(event_ms),
                "user_id": user,
                "action": action,
                "value": value,
                "session_id": document["session_id"],
                "ip_address": document["ip_address"],
            }
            record = GeneratedRecord(
                topic=config.user_events_topic,
                key=user.encode(),
                value=_dumps(document),
                truth=truth,
                expected_reason=None,
                late=role == _LATE,
                fmt="user_event",
            )
            if role != _LATE:
                self.newest_ms = (
                    event_ms if self.newest_ms is None else max(self.newest_ms, event_ms)
                )
        return dataclasses.replace(record, clock=from_ms(clock))

    def _malformed(self, kind: str, document: dict[str, Any]) -> GeneratedRecord:
        rng = self.rng
        key: bytes | None = document["user_id"].encode()
        if kind == "empty":
            value = rng.choice((b"", b"  "))
        elif kind == "oversized":
            document["payload"] = _stack_trace(rng, self.config.max_record_bytes)
            value = _dumps(document)
        elif kind == "invalid_json":
            value = _invalid_json(rng, document)
        elif kind == "missing_timestamp":
            del document["timestamp"]
            value = _dumps(document)
        elif kind == "invalid_timestamp":
            document["timestamp"] = rng.choice(("not-a-timestamp", "yesterday at noon"))
            value = _dumps(document)
        elif kind == "timestamp_out_of_range":
            document["timestamp"] = to_ms(
                from_ms(document["timestamp"]).replace(year=rng.choice((1990, 2100)), day=1)
            )
            value = _dumps(document)
        elif kind == "missing_field":
            if rng.random() < 0.5:
                del document["user_id"]
                key = None
            else:
                del document["action"]
            value = _dumps(document)
        elif kind == "invalid_field":
            document["value"] = "abc"
            value = _dumps(document)
        else:  # pragma: no cover - USER_EVENT_MALFORMED_KINDS is closed
            raise ValueError(kind)
        return GeneratedRecord(
            topic=self.config.user_events_topic,
            key=key,
            value=value,
            truth=None,
            expected_reason=kind,
            late=False,
            fmt="malformed",
        )


# -- public API -------------------------------------------------------------------------------


def iter_logs(config: GeneratorConfig, now: datetime | None = None) -> Iterator[GeneratedRecord]:
    """Log records in emission order, built lazily (constant memory per record)."""
    rng = random.Random(f"logstream-logs:{config.seed}")  # noqa: S311 - test data, not crypto
    plan = _Plan(_start_ms(config, now), _span_ms(config), config.count, bytearray(config.count))
    builder = _LogBuilder(config, rng, plan)
    for index in range(config.count):
        yield builder.record(index)


def iter_user_events(
    config: GeneratorConfig, count: int, now: datetime | None = None
) -> Iterator[GeneratedRecord]:
    """``count`` user events over the logs' simulated span, in emission order."""
    rng = random.Random(f"logstream-user-events:{config.seed}")  # noqa: S311 - test data
    # the logs' span; only user events (count=0 logs): their own at events_per_second
    span_ms = _span_ms(config) or round(count * 1000 / config.events_per_second)
    plan = _Plan(_start_ms(config, now, span_ms), span_ms, count, bytearray(count))
    builder = _UserEventBuilder(config, rng, plan, count)
    for index in range(count):
        yield builder.record(index)


def generate_logs(config: GeneratorConfig, now: datetime | None = None) -> list[GeneratedRecord]:
    """All ``config.count`` log records, in emission order."""
    return list(iter_logs(config, now))


def generate_user_events(
    config: GeneratorConfig, count: int, now: datetime | None = None
) -> list[GeneratedRecord]:
    """``count`` user events, in emission order."""
    return list(iter_user_events(config, count, now))


def merge_by_clock(*streams: Iterable[GeneratedRecord]) -> Iterator[GeneratedRecord]:
    """Interleave several emission-ordered streams by their simulated clock."""
    return heapq.merge(*streams, key=lambda record: record.clock or EPOCH)


# -- producing to Kafka ------------------------------------------------------------------------


class Progress:
    """A plain-text progress line on stderr (``\\r`` updates at most 5 times a second)."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        stream: TextIO | None = None,
        enabled: bool = True,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self._shown = 0.0
        self._width = 0

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.enabled and now - self._shown >= 0.2:
            self._shown = now
            self._write()

    def close(self) -> None:
        if self.enabled:
            self._write()
            self.stream.write("\n")
            self.stream.flush()

    def _write(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        text = f"\r{self.label}: {self.done:,}"
        if self.total:
            text += f"/{self.total:,} ({100 * self.done / self.total:5.1f}%)"
        text += f" {self.done / elapsed:,.0f} rec/s"
        self._width = max(self._width, len(text))
        self.stream.write(text.ljust(self._width))  # cover a longer previous line
        self.stream.flush()


def produce(
    records: Iterable[GeneratedRecord],
    bootstrap: str,
    rate: float | None = None,
    progress: bool = True,
    total: int | None = None,
) -> int:
    """Send records (keyed, acks=all, batched) at up to ``rate`` records/s; returns the count.

    Flushes at the end and raises ``ServiceError`` if any record was not acknowledged.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    if rate is not None and rate <= 0:
        raise ConfigError(f"rate={rate} must be > 0 records/s (omit it for as fast as possible)")
    if total is None and isinstance(records, Sequence):
        total = len(records)
    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="logstream-produce",
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
            max_request_size=4 * 1024 * 1024,
            bootstrap_timeout_ms=10_000,
        )
    except KafkaError as exc:
        raise ServiceError(
            f"no Kafka broker answers at {bootstrap} ({exc}); "
            "start one with `logstream kafka start`"
        ) from None

    failures: list[BaseException] = []
    bar = Progress("produce", total, enabled=progress)
    sent = 0
    started = time.monotonic()
    pace_every = max(1, int(rate // 50)) if rate else 0
    try:
        for record in records:
            future = producer.send(record.topic, key=record.key, value=record.value)
            future.add_errback(failures.append)
            sent += 1
            if pace_every and sent % pace_every == 0:
                ahead = started + sent / rate - time.monotonic()  # type: ignore[operator]
                if ahead > 0:
                    time.sleep(ahead)
            if sent % 1024 == 0:
                bar.update(sent)
                if failures:  # stop at the first refusal, not after the whole stream
                    break
        producer.flush()
        bar.update(sent)
    except KafkaError as exc:
        raise ServiceError(f"producing to Kafka at {bootstrap} failed: {exc}") from exc
    finally:
        bar.close()
        producer.close()
    if failures:
        raise ServiceError(
            f"{len(failures)} of {sent} records were not acknowledged by Kafka at {bootstrap} "
            f"(first error: {failures[0]}); check the broker with `logstream kafka status`"
        )
    return sent
