"""One typed settings object for every entrypoint.

Values come, in increasing priority, from the defaults below (which work on a laptop), an optional
YAML file (``LOGSTREAM_CONFIG`` or an explicit path) and environment variables named
``LOGSTREAM_<FIELD>`` (for example ``LOGSTREAM_KAFKA_PORT=19092``). Jobs receive their settings as
command-line arguments; they never read Airflow Variables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from logstream.errors import ConfigError

#: The checkout this package lives in (``include/logstream`` -> repo root).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "LOGSTREAM_"


def _state_dir() -> Path:
    return Path(os.environ.get("LOGSTREAM_STATE_DIR", PROJECT_ROOT / ".local"))


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Paths may be local folders or Hadoop-compatible URIs where noted."""

    # local state: broker data, Airflow home, status files (git-ignored)
    state_dir: Path = field(default_factory=_state_dir)
    # Maven-fetched jars (Kafka broker, Spark's Kafka connector)
    jars_dir: Path = field(default_factory=lambda: PROJECT_ROOT / ".cache" / "jars")

    # Kafka
    kafka_host: str = "127.0.0.1"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    # bootstrap servers of an external cluster; empty = the local broker at kafka_host:kafka_port
    kafka_bootstrap_servers: str = ""
    logs_topic: str = "logs"
    user_events_topic: str = "user-events"
    topic_partitions: int = 3

    # Parsing and validation (SPEC §3; the format names are logstream.formats')
    parse_format: str = "auto"  # a format, a group (auto, json, access, apache, nginx) or a list
    auto_formats: str = ""  # what auto tries; empty = your formats, then every preset
    # your own formats: {name: nginx log_format / Apache LogFormat string}
    access_formats: dict = field(default_factory=dict)
    # your own JSON field mappings: {name: {column: [JSON paths], "detect": [...], ...}}
    json_formats: dict = field(default_factory=dict)
    format_by_topic: dict = field(default_factory=dict)  # {topic: format expression}
    format_by_key: dict = field(default_factory=dict)  # {Kafka key: format expression}
    max_record_bytes: int = 65_536  # larger payloads are quarantined as "oversized"
    raw_bytes_kept: int = 4_096  # quarantine keeps at most this many bytes of the payload
    timestamp_max_past_s: int = 7 * 86_400  # bounds relative to the Kafka timestamp
    timestamp_max_future_s: int = 3_600
    # service of a record that names none: its Kafka key, else its topic's, else default_service
    default_service: str = "web"
    service_by_topic: dict = field(default_factory=dict)  # {topic: service}
    # proxies whose X-Forwarded-For entries are skipped (IPs/CIDRs, comma-separated); empty = the
    # client is the list's first address
    trusted_proxies: str = ""

    # Spark
    spark_master: str = "local[*]"
    # the catch-up batch below needs room: with 2g a 2M-record batch ran 35 % slower (GC)
    spark_driver_memory: str = "4g"
    # JVM options of the driver and executors (docs/BENCHMARKS.md, session 12). Spark generates
    # one method per query stage; the parse stage's is beyond HotSpot's 8000-byte limit, so by
    # default it is never JIT-compiled and runs interpreted (a 2M catch-up: 49 s with the limit,
    # 42 s without). The parallel collector suits micro-batches that allocate a lot and keep
    # little. C2 compiles a method after 10x HotSpot's default invocation counts: code that only
    # runs a few thousand times (query planning, Janino, one-off Spark jobs) stays with C1, which
    # saved 8 of 76 CPU-seconds and 2-4 s of a 2M catch-up; hot loops reach C2 all the same.
    spark_java_options: str = (
        "-XX:-DontCompileHugeMethods -XX:+UseParallelGC -XX:Tier4InvocationThreshold=50000 "
        "-XX:Tier4MinInvocationThreshold=6000 -XX:Tier4CompileThreshold=150000 "
        "-XX:Tier4BackEdgeThreshold=400000"
    )
    shuffle_partitions: int = 4
    # Python for the driver and executors under spark-submit; empty = this interpreter
    pyspark_python: str = ""
    spark_ui: bool = False
    # where the streaming job's driver runs (logstream.supervisor.drivers): "client" = a local
    # spark-submit process the supervisor tracks by pid; "cluster" = on the cluster (spark://,
    # yarn, k8s://), tracked through the cluster's own driver state
    spark_deploy_mode: str = "client"
    # a standalone master's REST submission server (http://host:6066); empty = spark_master's
    # host on port 6066
    spark_rest_url: str = ""
    # a standalone master's web UI, whose /json/ lists the applications; empty = port 8080
    spark_master_ui_url: str = ""
    # memory and cores of each executor; the total cores of an application (0 = Spark's default)
    spark_executor_memory: str = "1g"
    spark_executor_cores: int = 1
    spark_cores_max: int = 0
    # a YARN ResourceManager's web address (http://host:8088), whose REST API the supervisor
    # asks; empty = yarn.resourcemanager.webapp.address of HADOOP_CONF_DIR's yarn-site.xml
    yarn_rm_url: str = ""
    # Kubernetes namespace of the driver pod (spark-submit --status/--kill namespace:pod)
    spark_k8s_namespace: str = "default"

    # Tables and checkpoints: a local path or any Hadoop-compatible URI (s3a://, hdfs://, ...)
    data_root: str = ""
    checkpoint_root: str = ""
    # Shared storage (logstream.storage.remote). S3 through s3a://: the endpoint of an
    # S3-compatible server (empty = AWS), path-style URLs, region; credentials from the AWS
    # credentials file named here, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, never a setting
    s3_endpoint: str = ""
    s3_path_style: bool = False
    s3_region: str = ""
    s3_credentials_file: str = ""
    # HDFS: the NameNode's WebHDFS address for Python-side reads and writes (empty =
    # http://<namenode host>:9870) and the user it acts as (empty = this process's user)
    webhdfs_url: str = ""
    hdfs_user: str = ""

    # Streaming job
    trigger_interval: str = "2 seconds"
    # records per micro-batch while catching up: every batch costs fixed planning and code
    # generation, so big batches catch up faster (docs/BENCHMARKS.md); live traffic makes
    # batches far smaller than this
    max_offsets_per_trigger: int = 2_000_000
    starting_offsets: str = "earliest"  # where a NEW checkpoint starts reading Kafka
    status_dir: str = ""  # per-query status files (default <state_dir>/status)
    # Prometheus metrics on 127.0.0.1:<port> (0 = off; a port in use is logged, the job goes on)
    metrics_port: int = 9467
    # alert channels, comma-separated (logstream.alerts.routing): log, jsonl:/path/alerts.jsonl,
    # alertmanager (the local one `logstream up` runs; nothing while none was started),
    # alertmanager:http://host:port, slack, webhook, email
    alert_sink: str = "log,alertmanager"
    # alert delivery (SPEC §8): channel secrets come from Airflow connections or env, never here
    alert_timeout_s: float = 5.0  # per delivery attempt
    alert_retries: int = 3  # attempts per channel before the failure is logged
    alert_dedup_seconds: int = 3_600  # the same dedup key is delivered at most once per window
    # Alertmanager (logstream.ops.alertmanager): its loopback port, 0 = a free port picked at the
    # first start and kept in <state_dir>/alertmanager/port (9093/9094, its usual ports, are the
    # broker's controller and gossip); its config (default deploy/alertmanager/alertmanager.yml)
    alertmanager_port: int = 0
    alertmanager_config: str = ""
    # an alert is an event: Alertmanager shows it firing this long, then resolved
    alertmanager_resolve_s: int = 3_600
    # direct channels (slack, webhook, email; logstream.alerts.grouping): after an alert of a
    # kind and service, the next ones within this window go out as one digest at its end
    alert_group_seconds: int = 60
    # ... and at most this many messages per kind, channel and hour (the rest wait in a digest)
    alert_kind_rate_per_hour: int = 20
    # durable outbox (logstream.alerts.outbox, <state_dir>/alerts/outbox.jsonl): alerts a full
    # queue or a failed channel could not deliver, retried every alert_outbox_retry_s; past
    # alert_outbox_max alerts or alert_outbox_max_age_s the oldest are dropped with an ERROR
    alert_outbox_max: int = 10_000
    alert_outbox_max_age_s: int = 2 * 86_400
    alert_outbox_retry_s: int = 30
    # supervisor (SPEC §7.1)
    supervisor_stall_seconds: int = 300  # no progress for this long while Kafka lag > 0 = stalled
    supervisor_max_restarts: int = 3  # this many restarts within the window = a restart loop
    supervisor_restart_window_minutes: int = 30
    supervisor_backoff_seconds: int = 10  # first restart delay, doubled per recent restart
    # reports (latency report HTML, reconciliation change reports, GX Data Docs)
    reports_dir: str = ""  # default <state_dir>/reports
    # per metric family: {"error_rate": {"window": "2 minutes", "delay": "5 minutes"}}
    windows: dict = field(default_factory=dict)
    # anomaly thresholds (logstream.catalog.anomalies.Thresholds field names)
    thresholds: dict = field(default_factory=dict)

    # Airflow (embedded local default)
    airflow_port: int = 8080

    def __post_init__(self) -> None:
        if not self.data_root:
            object.__setattr__(self, "data_root", str(self.state_dir / "data"))
        if not self.checkpoint_root:
            object.__setattr__(self, "checkpoint_root", str(self.state_dir / "checkpoints"))
        if not self.status_dir:
            object.__setattr__(self, "status_dir", str(self.state_dir / "status"))
        if not self.reports_dir:
            object.__setattr__(self, "reports_dir", str(self.state_dir / "reports"))
        ports = ("kafka_port", "kafka_controller_port", "airflow_port")
        for name in (*ports, "metrics_port", "alertmanager_port"):
            port = getattr(self, name)
            if not 0 < port < 65536 and not (name not in ports and port == 0):
                raise ConfigError(
                    f"{name}={port} is not a TCP port; set {ENV_PREFIX}{name.upper()}"
                )
        self._check_formats()
        self._check_analytics()
        for name in ("alert_outbox_max", "alert_outbox_retry_s", "alert_kind_rate_per_hour"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"{name}={getattr(self, name)} must be >= 1; set {ENV_PREFIX}{name.upper()}"
                )
        if self.topic_partitions < 1:
            raise ConfigError(
                f"topic_partitions={self.topic_partitions} must be >= 1; "
                f"set {ENV_PREFIX}TOPIC_PARTITIONS"
            )

    def _check_formats(self) -> None:
        """Every format name and format string resolves (logstream.formats), at load time."""
        from logstream import formats

        known = formats.catalog(self.access_formats, self.json_formats, self.auto_formats)
        known.expand(self.parse_format)
        for setting in ("format_by_topic", "format_by_key"):
            for name, value in getattr(self, setting).items():
                known.expand(str(value), f"{setting}.{name}")
        formats.trusted_proxy_list(self.trusted_proxies)

    def _check_analytics(self) -> None:
        """Windows and thresholds are checked at load time, not when a job first uses them.

        Their checks live beside their definitions (Spark-side modules), imported only when one
        of these settings is given.
        """
        if self.windows:
            from logstream.catalog import configured_families

            configured_families(self.windows)
        if self.thresholds:
            from logstream.catalog.anomalies import Thresholds

            Thresholds.from_mapping(self.thresholds)

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap_servers or f"{self.kafka_host}:{self.kafka_port}"

    @property
    def kafka_data_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @classmethod
    def load(
        cls,
        yaml_path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from defaults, an optional YAML file, the environment and overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        yaml_path = yaml_path or env.get(f"{ENV_PREFIX}CONFIG")
        if yaml_path:
            values.update(_read_yaml(Path(yaml_path)))
        known = {f.name: f for f in fields(cls)}
        for name in known:
            raw = env.get(f"{ENV_PREFIX}{name.upper()}")
            if raw is not None:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(unknown)}; known settings: {', '.join(known)}"
            )
        hints = typing.get_type_hints(cls)
        coerced = {name: _coerce(name, value, hints[name]) for name, value in values.items()}
        return cls(**coerced)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; fix LOGSTREAM_CONFIG") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of setting: value")
    return data


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Turn a YAML or environment value into the field's declared type."""
    target = hint
    if isinstance(hint, types.UnionType):
        target = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(value)
        if target is Path:
            return Path(value).expanduser()
        if target in (int, float, str):
            return target(value)
        if target is dict:
            parsed = json.loads(value) if isinstance(value, str) else value
            if not isinstance(parsed, dict):
                raise ValueError(value)
            return parsed
    except (TypeError, ValueError):  # json.JSONDecodeError is a ValueError
        raise ConfigError(
            f"setting {name}={value!r} is not a valid {getattr(target, '__name__', target)}"
        ) from None
    return value


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and repeatable ``--set KEY=VALUE``: how every job receives its settings."""
    parser.add_argument("--config", help="YAML settings file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set data_root=s3a://bucket/logstream",
    )


def settings_from_arguments(args: argparse.Namespace) -> Settings:
    """The settings a job was given (`add_settings_arguments`); ConfigError if malformed."""
    overrides: dict[str, str] = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value
    return Settings.load(args.config, **overrides)


def settings_arguments(settings: Settings) -> list[str]:
    """``--set KEY=VALUE`` for every setting: what `settings_from_arguments` turns back into
    ``settings``, so a job gets exactly the submitter's settings whatever environment it runs in."""
    arguments: list[str] = []
    for item in fields(settings):
        value = getattr(settings, item.name)
        text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
        arguments += ["--set", f"{item.name}={text}"]
    return arguments
