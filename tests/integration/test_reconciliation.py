"""The nightly reconciliation end to end against the independent oracle (tests/oracle.py).

A bronze day is written with the real bronze schemas: traffic around the previous midnight, noon
and the next midnight, with late events (beyond every watermark delay, and some only beyond the
5-minute ones) in windows the stream did and did not emit. The "streamed" metric tables are what
an append-mode stream finalises: the oracle over the events that were on time for each family's
delay. Reconciling the day must give the oracle over ALL valid events, report exactly the windows
the late events changed (plus one hand-corrupted and one stream-only window), count late events
per service, and give byte-identical files when run again.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import types as T

from logstream import catalog, schemas
from logstream.batch.reconcile import reconcile_day
from logstream.batch.reconcile_report import REPORT_SCHEMA, report_path
from logstream.storage.fs import HadoopFS
from logstream.storage.tables import read_table, table_path, table_schema
from tests import oracle
from tests.include.reports.hostile import HOSTILE

DAY = date(2026, 3, 10)
REL = 1e-9
#: two services and two users are hostile HTML (log content is attacker-controlled)
HOSTILE_SERVICES = (HOSTILE[0], HOSTILE[1])
HOSTILE_USERS = (HOSTILE[3], HOSTILE[4])
SERVICES = ("auth", "search", "checkout", *HOSTILE_SERVICES)
USERS = (*HOSTILE_USERS, *(f"user-{n:02d}" for n in range(2, 12)))
IPS = tuple(f"10.0.{n // 8}.{n % 8 + 1}" for n in range(10))
ACTIONS = ("view", "click", "add_to_cart", "purchase")
FAR_LATE_MS = (15 * 60_000, 3 * 3_600_000)  # later than every watermark delay
MID_LATE_MS = (6 * 60_000, 9 * 60_000)  # late for the 5-minute delays only
ENTITY_KEYS = {
    "response_time": ("service",),
    "error_rate": ("service",),
    "ip_patterns": ("ip_address",),
    "sla": ("service",),
    "user_activity": ("user_id",),
    "service_popularity": ("service",),
    "system_health": (),
    "processing_latency": ("service",),
    "ip_requests": ("ip_address",),
    "user_event_activity": ("user_id",),
    "action_metrics": ("action",),
    "user_event_counts": ("user_id",),
}


#: each family's row count column (SPEC §5 names)
COUNT_COLUMN = {
    "response_time": "request_count",
    "error_rate": "total_requests",
    "ip_patterns": "request_count",
    "sla": "total_requests",
    "user_activity": "activity_count",
    "service_popularity": "request_count",
    "system_health": "total_requests",
    "processing_latency": "record_count",
    "ip_requests": "request_count",
    "user_event_activity": "total_events",
    "action_metrics": "action_count",
    "user_event_counts": "event_count",
}
DAY_DELTA = timedelta(days=1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# -- the dataset (plain Python; also used by the DAG test) ---------------------------------------


def build_log_events(day: date, seed: int = 7) -> list[dict]:
    """Bronze ``events`` rows (dicts with every EVENTS field) around ``day``."""
    rng = random.Random(seed)
    midnight = _midnight(day)
    clusters = [  # (first event time, seconds, events)
        (midnight - timedelta(minutes=3), 360, 260),  # previous day into this one
        (midnight + timedelta(hours=11, minutes=58), 600, 420),
        (midnight + timedelta(hours=23, minutes=56), 360, 260),  # this day into the next
    ]
    events: list[dict] = []
    for start, seconds, count in clusters:
        for _ in range(count):
            moment = start + timedelta(milliseconds=rng.randrange(seconds * 1000))
            events.append(_log_event(rng, moment, lateness_ms=rng.randrange(0, 25_000)))
    # late arrivals: inside windows the stream emitted, and in hours it never saw traffic
    for hour, minute, far in [(12, 1, True)] * 18 + [(12, 4, False)] * 10 + [(18, 30, True)] * 6:
        moment = midnight + timedelta(hours=hour, minutes=minute, seconds=rng.randrange(120))
        span = FAR_LATE_MS if far else MID_LATE_MS
        events.append(_log_event(rng, moment, lateness_ms=rng.randrange(*span)))
    for _ in range(12):  # late, just before midnight
        moment = midnight + DAY_DELTA - timedelta(seconds=rng.randrange(1, 200))
        events.append(_log_event(rng, moment, lateness_ms=rng.randrange(*FAR_LATE_MS)))
    events[0]["lateness_ms"] = None  # the stream's first batch has no high-water mark yet
    for offset, event in enumerate(sorted(events, key=lambda e: e["event_time"])):
        event["event_id"] = f"logs:{offset % 3}:{offset}"
        event["kafka_partition"] = offset % 3
        event["kafka_offset"] = offset
    return events


def _log_event(rng: random.Random, moment: datetime, lateness_ms: int | None) -> dict:
    service = rng.choice(SERVICES)
    status = rng.choice((200,) * 12 + (201, 404, 500, 503, None))
    response_time = None if rng.random() < 0.05 else round(rng.lognormvariate(-1.2, 0.9), 4)
    user = None if rng.random() < 0.1 else rng.choice(USERS)
    ip = None if rng.random() < 0.03 else rng.choice(IPS)
    processed = moment + timedelta(milliseconds=(lateness_ms or 0) + rng.randrange(30, 4_000))
    return {
        "event_id": "",
        "event_time": moment,
        "level": "ERROR" if (status or 0) >= 500 else "INFO",
        "service": service,
        "message": f"{service} request",
        "ip_address": ip,
        "user_id": user,
        "request_id": f"req-{rng.getrandbits(32):08x}",
        "response_time": response_time,
        "status_code": status,
        "error_code": "E500" if (status or 0) >= 500 else None,
        "http_method": None,
        "path": f"/{service}/{HOSTILE[2]}",
        "protocol": None,
        "bytes_sent": None,
        "referrer": None,
        "user_agent": HOSTILE[1],
        "extra": {},
        "source_format": "json",
        "kafka_topic": "logs",
        "kafka_partition": 0,
        "kafka_offset": 0,
        "kafka_timestamp": processed - timedelta(milliseconds=20),
        "processing_time": processed,
        "lateness_ms": lateness_ms,
        "event_date": moment.date(),
        "event_hour": moment.hour,
    }


def build_user_events(day: date, seed: int = 11) -> list[dict]:
    """Bronze ``user_events`` rows: sliding windows on both midnights, some late."""
    rng = random.Random(seed)
    midnight = _midnight(day)
    events = []
    for start, seconds, count, late_share in [
        (midnight - timedelta(seconds=50), 130, 90, 0.0),
        (midnight + timedelta(hours=9), 240, 80, 0.2),
        (midnight + DAY_DELTA - timedelta(seconds=100), 170, 110, 0.1),
    ]:
        for _ in range(count):
            moment = start + timedelta(milliseconds=rng.randrange(seconds * 1000))
            late = rng.random() < late_share
            lateness = rng.randrange(*FAR_LATE_MS) if late else rng.randrange(0, 20_000)
            action = rng.choice(ACTIONS)
            processed = moment + timedelta(milliseconds=lateness + rng.randrange(30, 900))
            events.append(
                {
                    "event_id": "",
                    "event_time": moment,
                    "user_id": rng.choice(USERS[:6]),
                    "action": action,
                    "value": None if action == "view" else round(rng.uniform(1, 200), 2),
                    "session_id": f"sess-{rng.randrange(40)}",
                    "ip_address": rng.choice(IPS),
                    "extra": {},
                    "kafka_topic": "user-events",
                    "kafka_partition": 0,
                    "kafka_offset": 0,
                    "kafka_timestamp": processed,
                    "processing_time": processed,
                    "lateness_ms": lateness,
                    "event_date": moment.date(),
                    "event_hour": moment.hour,
                }
            )
    for offset, event in enumerate(sorted(events, key=lambda e: e["event_time"])):
        event["event_id"] = f"user-events:{offset % 2}:{offset}"
        event["kafka_partition"] = offset % 2
        event["kafka_offset"] = offset
    return events


def write_bronze(spark, settings, log_events: list[dict], user_events: list[dict]) -> None:
    """Land the rows the way ingestion does: partitioned by event date and hour."""
    for table, schema, rows in (
        ("events", schemas.EVENTS, log_events),
        ("user_events", schemas.USER_EVENTS, user_events),
    ):
        frame = spark.createDataFrame(
            [[r.get(f) for f in schema.fieldNames()] for r in rows], schema
        )
        (
            frame.write.mode("overwrite")
            .partitionBy("event_date", "event_hour")
            .parquet(table_path(settings, table))
        )


def oracle_rows(family: str, events: list[dict]) -> list[dict]:
    """The oracle's rows for one family (SPEC default windows)."""
    if family == "response_time":
        return oracle.response_time_per_service(events)
    if family == "error_rate":
        return oracle.error_rate_per_service(events)
    if family == "ip_patterns":
        return oracle.ip_patterns(events)
    if family == "sla":
        return oracle.sla_per_service(events)
    if family == "user_activity":
        return oracle.user_activity(events)
    if family == "service_popularity":
        return oracle.service_popularity(events)
    if family == "system_health":
        return oracle.system_health(events)
    if family == "processing_latency":
        return oracle.processing_latency(events)
    if family == "ip_requests":
        return [
            {k: v for k, v in row.items() if k != "services_used"}
            for row in oracle.ip_patterns(events, window=60)
        ]
    if family == "user_event_activity":
        return oracle.user_event_activity(events)
    if family == "action_metrics":
        return oracle.action_metrics(events)
    if family == "user_event_counts":
        return [
            {"user_id": a["key"], "window_start": a["window_start"], "window_end": a["window_end"]}
            | {"event_count": int(a["observed"])}
            for a in oracle.high_activity_user(events, threshold=-1)
        ]
    raise KeyError(family)


def on_time_for(family: catalog.Family, events: list[dict]) -> list[dict]:
    """What the stream aggregates for a family: events within its watermark delay."""
    return [e for e in events if e["lateness_ms"] is None or e["lateness_ms"] <= family.delay_ms]


def streamed_tables(settings, log_events, user_events) -> dict[str, list[dict]]:
    """Each family's streamed rows = the oracle over the events on time for its delay."""
    written = {}
    for family in catalog.configured_families(settings.windows):
        source = log_events if family.source == "events" else user_events
        rows = oracle_rows(family.name, on_time_for(family, source))
        for row in rows:
            row["window_date"] = row["window_start"].date()
        written[family.name] = rows
    return written


def save_streamed(spark, settings, streamed: dict[str, list[dict]]) -> None:
    for name, rows in streamed.items():
        schema = table_schema(spark, name)
        frame = spark.createDataFrame(
            [[r.get(f) for f in schema.fieldNames()] for r in rows], schema
        )
        frame.write.mode("overwrite").partitionBy("window_date").parquet(table_path(settings, name))


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(spark, settings, tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("reconcile")
    run_settings = settings.replace(data_root=str(root / "data"), reports_dir=str(root / "reports"))
    log_events = build_log_events(DAY)
    user_events = build_user_events(DAY)
    write_bronze(spark, run_settings, log_events, user_events)
    streamed = streamed_tables(run_settings, log_events, user_events)
    # a stream bug the report must surface: one corrupted value, one window the batch never had
    corrupted = next(
        r
        for r in streamed["response_time"]
        if r["window_date"] == DAY
        and r["avg_response_time"] is not None
        and r["window_start"].hour == 0
    )
    corrupted["avg_response_time"] += 0.5
    ghost_start = _midnight(DAY) + timedelta(hours=5)
    streamed["error_rate"].append(
        {
            "service": "ghost",
            "window_start": ghost_start,
            "window_end": ghost_start + timedelta(minutes=1),
            "total_requests": 3,
            "error_count": 0,
            "error_rate": 0.0,
            "window_date": DAY,
        }
    )
    save_streamed(spark, run_settings, streamed)

    first = reconcile_day(spark, run_settings, DAY)
    snapshot = _snapshot(root / "data", root / "reports")
    # leftovers of an interrupted run must not survive or change anything
    junk = root / "data" / "reconciled" / "_staging" / DAY.isoformat() / "ready" / "junk.parquet"
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(b"half a file")
    second = reconcile_day(spark, run_settings, DAY)
    return {
        "settings": run_settings,
        "root": root,
        "logs": log_events,
        "user_events": user_events,
        "streamed": streamed,
        "corrupted": corrupted,
        "ghost": ghost_start,
        "first": first,
        "second": second,
        "snapshot": snapshot,
    }


def _snapshot(*folders: Path) -> dict[str, bytes]:
    """Every published file (not Hadoop's .crc side files) and its bytes."""
    files = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            relative = str(path.relative_to(folder.parent))
            published = "reconciled" in relative or "reconciliation" in relative
            if path.is_file() and published and not path.name.endswith(".crc"):
                files[relative] = path.read_bytes()
    return files


def _aware(moment: datetime) -> datetime:
    # Spark collects timestamps as naive local times
    return moment.astimezone(UTC) if moment.tzinfo is None else moment


def _of_day(rows: list[dict]) -> list[dict]:
    return [row for row in rows if row["window_start"].date() == DAY]


def _key(family: str, row: dict) -> tuple:
    return (_aware(row["window_start"]), *[row[k] for k in ENTITY_KEYS[family]])


# -- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(ENTITY_KEYS))
def test_reconciled_table_equals_the_oracle_over_all_valid_events(spark, world, family):
    want = {_key(family, row): row for row in _of_day(oracle_rows(family, _source(world, family)))}
    table = read_table(spark, world["settings"], f"reconciled/{family}")
    got_rows = [row.asDict(recursive=True) for row in table.collect()]
    got = {_key(family, row): row for row in got_rows}
    assert len(got) == len(got_rows), "duplicate windows"
    assert want, "the dataset must produce windows on the day"
    assert set(got) == set(want), (
        sorted(set(want) - set(got))[:3],
        sorted(set(got) - set(want))[:3],
    )
    schema = table_schema(spark, f"reconciled/{family}")
    for key, expected in want.items():
        row = got[key]
        assert row["window_date"] == DAY
        assert _aware(row["window_end"]) == expected["window_end"]
        for field in schema.fields:
            name = field.name
            if name in {"window_start", "window_end", "window_date", *ENTITY_KEYS[family]}:
                continue
            if name in {"p50_response_time", "p95_response_time", "p99_response_time"}:
                p = {"p50": 0.5, "p95": 0.95, "p99": 0.99}[name[:3]]
                assert oracle.percentile_rank_ok(expected["response_times"], p, row[name]), (
                    key,
                    name,
                )
            elif isinstance(field.dataType, T.DoubleType) and expected[name] is not None:
                assert math.isclose(row[name], expected[name], rel_tol=REL, abs_tol=1e-12), (
                    key,
                    name,
                    row[name],
                    expected[name],
                )
            else:
                assert row[name] == expected[name], (key, name, row[name], expected[name])


def _expected_changes(world) -> dict[tuple, dict]:
    """(family, change, window_start, entity) -> counts, from the oracle and the two stream bugs."""
    expected = {}
    for family in catalog.configured_families(world["settings"].windows):
        keys = ENTITY_KEYS[family.name]
        events = _source(world, family.name)
        everything = {_key(family.name, r): r for r in _of_day(oracle_rows(family.name, events))}
        streamed = {_key(family.name, r): r for r in _of_day(world["streamed"][family.name])}
        count = COUNT_COLUMN[family.name]
        for key in set(everything) | set(streamed):
            entity = "|".join(str(v) for v in key[1:]) if keys else None
            was, now = streamed.get(key), everything.get(key)
            if was is None:
                change = "missing_in_stream"
            elif now is None:
                change = "only_in_stream"
            elif was[count] != now[count]:
                change = "different"
            else:
                continue
            expected[(family.name, change, key[0], entity)] = {
                "streamed_count": None if was is None else was[count],
                "reconciled_count": None if now is None else now[count],
            }
    corrupted = world["corrupted"]
    expected[("response_time", "different", corrupted["window_start"], corrupted["service"])] = {
        "streamed_count": corrupted["request_count"],
        "reconciled_count": corrupted["request_count"],
    }
    return expected


def test_change_report_lists_exactly_the_windows_late_events_changed(spark, world):
    expected = _expected_changes(world)
    kinds = {change for _, change, _, _ in expected}
    assert kinds == {"missing_in_stream", "different", "only_in_stream"}, kinds
    report_rows = [
        row.asDict(recursive=True)
        for row in spark.read.schema(REPORT_SCHEMA)
        .parquet(table_path(world["settings"], "reconciliation_report"))
        .collect()
    ]
    got = {
        (r["family"], r["change"], _aware(r["window_start"]), r["entity"]): r for r in report_rows
    }
    assert len(got) == len(report_rows)
    assert set(got) == set(expected)
    for key, want in expected.items():
        row = got[key]
        assert row["report_date"] == DAY
        assert row["streamed_count"] == want["streamed_count"], key
        assert row["reconciled_count"] == want["reconciled_count"], key
        assert row["count_column"] == COUNT_COLUMN[key[0]]
        if key[1] == "different" and want["streamed_count"] != want["reconciled_count"]:
            assert row["count_column"] in row["changed_columns"], key
    corrupted = world["corrupted"]
    row = got[("response_time", "different", corrupted["window_start"], corrupted["service"])]
    assert row["changed_columns"] == ["avg_response_time"]
    assert got[("error_rate", "only_in_stream", world["ghost"], "ghost")]["streamed_count"] == 3

    # the JSON report says the same, per family
    report = json.loads(Path(report_path(world["settings"], DAY)).read_text())
    assert report == world["first"]
    for family, section in report["families"].items():
        mine = [k for k in expected if k[0] == family]
        assert section["missing_in_stream"] == sum(k[1] == "missing_in_stream" for k in mine)
        assert section["different"] == sum(k[1] == "different" for k in mine)
        assert section["only_in_stream"] == sum(k[1] == "only_in_stream" for k in mine)
        assert section["windows_corrected"] == section["missing_in_stream"] + section["different"]
        listed = {
            (family, c["change"], datetime.fromisoformat(c["window_start"]), c["entity"])
            for c in section["changes"]
        }
        assert listed == set(mine)
        assert section["windows"] == len(_of_day(oracle_rows(family, _source(world, family))))
    assert report["summary"].startswith(f"reconciled {DAY}: 12 tables")


def _source(world, family: str) -> list[dict]:
    return (
        world["logs"] if catalog.FAMILY_BY_NAME[family].source == "events" else world["user_events"]
    )


def test_report_counts_late_events_per_service_and_the_maximum_lateness(world):
    of_day = [e for e in world["logs"] if e["event_time"].date() == DAY]
    late = defaultdict(int)
    for event in of_day:
        if (event["lateness_ms"] or 0) > 5 * 60_000:
            late[event["service"]] += 1
    section = world["first"]["late"]["events"]
    assert section["threshold_ms"] == 300_000
    assert section["events"] == len(of_day)
    assert section["late_events"] == sum(late.values()) > 30
    assert section["max_lateness_ms"] == max(e["lateness_ms"] or 0 for e in of_day)
    for service, numbers in section["per_service"].items():
        assert numbers["late_events"] == late[service], service
        assert numbers["max_lateness_ms"] == max(
            e["lateness_ms"] or 0 for e in of_day if e["service"] == service
        )
    user_day = [e for e in world["user_events"] if e["event_time"].date() == DAY]
    user_section = world["first"]["late"]["user_events"]
    assert user_section["events"] == len(user_day)
    assert user_section["late_events"] == sum(e["lateness_ms"] > 300_000 for e in user_day) > 0


def test_the_json_report_keeps_hostile_names_and_is_safe_to_embed_in_a_page(world):
    text = Path(report_path(world["settings"], DAY)).read_text()
    assert not {"<", ">", "&"} & set(text)  # a </script> in a name cannot end an element
    report = json.loads(text)
    assert report == world["first"]
    assert set(HOSTILE_SERVICES) <= set(report["late"]["events"]["per_service"])
    entities = {
        change["entity"] for family in report["families"].values() for change in family["changes"]
    }
    assert set(HOSTILE_SERVICES) <= entities and set(HOSTILE_USERS) <= entities


def test_running_the_day_twice_gives_identical_files(world):
    again = _snapshot(world["root"] / "data", world["root"] / "reports")
    assert world["first"] == world["second"]
    assert sorted(again) == sorted(world["snapshot"])
    for name, content in world["snapshot"].items():
        assert again[name] == content, name
    # one file per family-day, under a fixed name; nothing left in staging
    partitions = [n for n in again if f"window_date={DAY}" in n]
    assert len(partitions) == len(ENTITY_KEYS)
    assert all(n.endswith("/part-00000.parquet") for n in partitions)
    staging = world["root"] / "data" / "reconciled" / "_staging" / DAY.isoformat()
    assert not staging.exists()


def test_other_days_are_untouched_and_only_windows_starting_on_the_day_are_written(spark, world):
    fs = HadoopFS(spark)
    root = table_path(world["settings"], "reconciled")
    for family in ENTITY_KEYS:
        assert fs.list_names(f"{root}/{family}") == [f"window_date={DAY}"]
