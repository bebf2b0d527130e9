"""docker-compose.yml: Debian's ``docker-compose config`` accepts it, and it is the native topology.

The first half checks the file's hygiene: every image pinned, a healthcheck on every service,
ports published on the host's loopback only, secrets only from ``.env`` (``.env.example`` lists
them, empty, and compose refuses to start without them). The second half checks each service
against the code that runs the same service natively (the Kafka broker's properties, the Spark
cluster's daemons and properties, the team Airflow's environment and processes, the Hadoop
version and MiniDFSCluster settings, the monitoring configs in deploy/): the expected values are
read from that code and from deploy/, never restated here. ``docker-compose config`` needs no
Docker engine: two runs side by side; the module takes about 4 CPU-seconds.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from logstream.config import ENV_PREFIX, PROJECT_ROOT, Settings

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
DOCKERFILE = PROJECT_ROOT / "deploy" / "airflow" / "Dockerfile"
DEPLOY = PROJECT_ROOT / "deploy"
#: the native HDFS (logstream.runtime.hdfs): MiniDFSCluster configured in Java
MINI_HDFS = (
    PROJECT_ROOT
    / "jvm"
    / "hdfs-minicluster"
    / "src"
    / "main"
    / "java"
    / "dev"
    / "logstream"
    / "hdfs"
    / "MiniHdfs.java"
)
#: environment variables that hold credentials or keys (not paths to them, ``*_FILE``): their
#: values must come from .env
SECRET_NAME = re.compile(
    r"(PASSWORD|SECRET|FERNET|TOKEN|_KEY|SQL_ALCHEMY_CONN|BROKER_URL|RESULT_BACKEND|"
    r"AUTH_MANAGER_USERS|ADMIN_USER)(?!.*_FILE$)"
)
#: an exact version in an image tag (major.minor.patch, optionally after a "v")
EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+")
#: images whose releases have two numbers (PostgreSQL since 10: 15.18 is one exact release)
TWO_NUMBER_RELEASES = {"postgres": re.compile(r"^\d+\.\d+(?:-|$)")}


# -- docker-compose config ---------------------------------------------------------------------
def _compose_binary() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed; install Debian's docker-compose (`make system`, "
            "it is in apt-packages.txt)"
        )
    return binary


def _start_config(env_file: Path, cwd: Path) -> subprocess.Popen:
    """``docker-compose config`` with only ``env_file`` as the source of variables, started
    (the two runs of this module overlap: each is mostly Python starting up)."""
    return subprocess.Popen(
        [_compose_binary(), "--file", str(COMPOSE), "--env-file", str(env_file), "config"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd)},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _referenced_variables() -> dict[str, str]:
    """``{name: operator}`` of every ``${NAME...}`` in the compose file (``:?``, ``:-`` or "")."""
    found = re.findall(r"(?<!\$)\$\{(\w+)(:[?-])?", COMPOSE.read_text())  # $${...} is escaped
    return {name: operator for name, operator in found}


@pytest.fixture(scope="module")
def dummy_secrets() -> dict[str, str]:
    """A distinct random value per required variable, so a leak can be traced to its place."""
    required = [name for name, op in _referenced_variables().items() if op == ":?"]
    return {name: f"dummy{secrets.token_hex(8)}" for name in required}


@pytest.fixture(scope="module")
def config_runs(
    tmp_path_factory: pytest.TempPathFactory, dummy_secrets: dict[str, str]
) -> dict[str, subprocess.CompletedProcess]:
    """``docker-compose config`` with an .env of dummy secrets ("dummy") and with .env.example
    as it ships ("example", every secret empty)."""
    folder = tmp_path_factory.mktemp("compose")
    env_file = folder / ".env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in dummy_secrets.items()))
    started = {
        "dummy": _start_config(env_file, folder),
        "example": _start_config(ENV_EXAMPLE, folder),
    }
    return {name: _finish(process) for name, process in started.items()}


@pytest.fixture(scope="module")
def config(config_runs: dict[str, subprocess.CompletedProcess]) -> dict:
    """The resolved configuration, from an .env holding only dummy secrets."""
    result = config_runs["dummy"]
    assert result.returncode == 0, f"docker-compose config refused the file:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def raw() -> dict:
    """The file as written (``${...}`` not interpolated; YAML anchors resolved)."""
    return yaml.safe_load(COMPOSE.read_text())


# -- helpers on the resolved configuration -------------------------------------------------------
def _services(config: dict) -> dict[str, dict]:
    return config["services"]


def _env(config: dict, service: str) -> dict[str, str]:
    env = _services(config)[service].get("environment") or {}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _command(config: dict, service: str) -> list[str]:
    command = _services(config)[service].get("command") or []
    return [command] if isinstance(command, str) else [str(part) for part in command]


def _flag(command: list[str], flag: str) -> str:
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


def _published(config: dict, service: str) -> list[tuple[str, int, int]]:
    """``(host ip, host port, container port)`` of each published port."""
    published = []
    for port in _services(config)[service].get("ports") or []:
        if isinstance(port, dict):
            published.append(
                (str(port.get("host_ip", "")), int(port["published"]), int(port["target"]))
            )
            continue
        parts = str(port).split("/")[0].split(":")
        host_ip = parts[0] if len(parts) == 3 else ""
        published.append((host_ip, int(parts[-2]) if len(parts) > 1 else 0, int(parts[-1])))
    return published


def _mounts(config: dict, service: str) -> dict[str, str]:
    """``{container path: host path or volume name}``."""
    mounts = {}
    for volume in _services(config)[service].get("volumes") or []:
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume["source"]
        else:
            source, target = str(volume).split(":")[:2]
            mounts[target] = source
    return mounts


def _host_path(config: dict, service: str, container_path: str) -> Path | None:
    """The host file behind ``container_path`` through the service's bind mounts (None when no
    bind mount covers it)."""
    path = PurePosixPath(container_path)
    for target, source in sorted(_mounts(config, service).items(), key=lambda m: -len(m[0])):
        if source.startswith("/") and (
            path == PurePosixPath(target) or PurePosixPath(target) in path.parents
        ):
            return Path(source) / path.relative_to(target)
    return None


def _namespace(config: dict, service: str) -> str:
    """The service whose network namespace ``service`` lives in."""
    mode = _services(config)[service].get("network_mode", "")
    return mode.removeprefix("service:") if mode.startswith("service:") else service


def _image_root() -> PurePosixPath:
    """Where deploy/airflow/Dockerfile puts the checkout in the image (``COPY ... . <root>``)."""
    match = re.search(r"^COPY\b[^\n]*\s\.\s+(\S+)\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"{DOCKERFILE} copies no checkout into the image"
    return PurePosixPath(match.group(1))


def _in_checkout(container_path: str) -> Path:
    """The checkout's file that ``container_path`` (under the image's checkout) is."""
    return PROJECT_ROOT / PurePosixPath(container_path).relative_to(_image_root())


def _project_services(config: dict) -> list[str]:
    """The services that run the project's image (deploy/airflow/Dockerfile)."""
    return [name for name, service in _services(config).items() if "build" in service]


def _logstream_services(config: dict) -> list[str]:
    """The services that run the project's code with its settings (``LOGSTREAM_*``)."""
    return [name for name in _project_services(config) if _settings_env(config, name)]


def _settings_env(config: dict, service: str) -> dict[str, str]:
    return {k: v for k, v in _env(config, service).items() if k.startswith(ENV_PREFIX)}


def _compose_settings(config: dict, service: str) -> Settings:
    return Settings.load(env=_settings_env(config, service))


def _airflow_command(config: dict, service: str) -> list[str]:
    """The ``airflow`` subcommand a service runs (the image's entrypoint runs ``airflow
    <command>``; a ``bash <script>`` command runs the script's final ``exec airflow ...``)."""
    command = _command(config, service)
    if command[:1] == ["bash"]:
        script = _in_checkout(command[1]).read_text()
        execs = re.findall(r"^exec airflow (.+)$", script, re.MULTILINE)
        assert execs, f"{command[1]} does not end by exec'ing airflow"
        return execs[-1].split()
    return command


def _subcommand(arguments: list[str] | tuple[str, ...]) -> list[str]:
    """The words before the first option: ``celery worker --concurrency 2`` -> celery worker."""
    words = []
    for word in arguments:
        if word.startswith("-"):
            break
        words.append(word)
    return words


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmgt]?)b?", size.strip().lower()).groups()
    return int(number) * 1024 ** " kmgt".index(unit or " ")


def _major_minor(text: str) -> str:
    match = re.search(r"(\d+)\.(\d+)", text)
    assert match, f"no version in {text!r}"
    return f"{match.group(1)}.{match.group(2)}"


def _tag(config: dict, service: str) -> str:
    return _services(config)[service]["image"].rsplit(":", 1)[1]


def _pom_property(pom: Path, name: str) -> str:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    return ET.parse(pom).getroot().find(f"m:properties/m:{name}", namespace).text.strip()


def _locked_version(package: str) -> str:
    lock = tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == package)


def _version_of(command: list[str]) -> str | None:
    """``command``'s ``--version`` output, None when the binary is not installed."""
    if shutil.which(command[0]) is None and not Path(command[0]).is_file():
        return None
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    return result.stdout + result.stderr


# -- hygiene -----------------------------------------------------------------------------------
def test_config_accepts_the_file(config: dict) -> None:
    assert config["services"], "docker-compose config resolved no services"


def test_compose_refuses_to_start_without_the_secrets(config_runs: dict) -> None:
    """.env.example as it ships (every secret empty) is refused, naming a missing secret."""
    result = config_runs["example"]
    required = [name for name, op in _referenced_variables().items() if op == ":?"]
    assert result.returncode != 0, "docker-compose config accepted empty secrets"
    assert any(name in result.stderr for name in required), result.stderr


def test_env_example_lists_every_variable_empty() -> None:
    example = _env_example()
    referenced = _referenced_variables()
    assert set(example) == set(referenced), (
        f"variables of docker-compose.yml {sorted(referenced)} and of .env.example "
        f"{sorted(example)} differ"
    )
    assert {name: value for name, value in example.items() if value} == {}
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().split()


def test_every_image_is_pinned(config: dict) -> None:
    for name, service in _services(config).items():
        image = service.get("image", "")
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image!r} has no tag"
        exact = TWO_NUMBER_RELEASES.get(repository, EXACT_VERSION)
        assert exact.match(tag), f"{name}: image {image!r} is not an exact version"
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert bases, f"{DOCKERFILE} has no FROM"
    for base in bases:
        assert EXACT_VERSION.match(base.rpartition(":")[2]), f"{DOCKERFILE}: FROM {base} unpinned"


def test_every_service_has_a_healthcheck(config: dict) -> None:
    for name, service in _services(config).items():
        check = service.get("healthcheck") or {}
        assert not check.get("disable"), f"{name}: healthcheck disabled"
        assert check.get("test") and check["test"] != ["NONE"], f"{name}: no healthcheck"


def test_ports_are_published_on_loopback_only(config: dict) -> None:
    for name, service in _services(config).items():
        assert service.get("network_mode") != "host", f"{name} uses the host's network"
        for host_ip, _, _ in _published(config, name):
            assert host_ip == "127.0.0.1", f"{name} publishes a port on {host_ip or 'all'}"


def test_secrets_come_from_env_only(config: dict, raw: dict, dummy_secrets: dict) -> None:
    """Secret-named variables are ``${...}`` references in the file; once resolved, each dummy
    secret appears in some service's environment and nowhere else (commands, healthchecks)."""
    for name, service in raw["services"].items():  # anchors resolved: x-* blocks included
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert "${" in str(value), f"{name}: {key} is a literal, not from .env"
    for secret_name, value in dummy_secrets.items():
        used = [
            name
            for name in _services(config)
            if any(value in v for v in _env(config, name).values())
        ]
        assert used, f"{secret_name} is required but no service uses it"
        for name, service in _services(config).items():
            outside = {k: v for k, v in service.items() if k != "environment"}
            assert value not in json.dumps(outside), f"{name}: {secret_name} outside environment"


def test_bind_mounts_and_scripts_exist(config: dict) -> None:
    for name in _services(config):
        for target, source in _mounts(config, name).items():
            if source.startswith("/"):
                assert Path(source).exists(), f"{name}: {source} (mounted at {target}) missing"
        for word in _command(config, name):
            if word.startswith(f"{_image_root()}/"):
                assert _in_checkout(word).exists(), f"{name}: {word} is not in the checkout"


def test_settings_of_every_project_service_load(config: dict) -> None:
    """Every ``LOGSTREAM_*`` variable names a setting, and the settings load."""
    known = set(inspect.signature(Settings).parameters)
    for name in _project_services(config):
        for variable in _settings_env(config, name):
            assert variable.removeprefix(ENV_PREFIX).lower() in known, (
                f"{name}: {variable} is not a logstream setting"
            )
        _compose_settings(config, name)


# -- the native topology: Kafka ------------------------------------------------------------------
def _kafka_property(variable: str) -> str:
    """The apache/kafka image's naming: KAFKA_A_B -> a.b, ``__`` -> ``_``, ``___`` -> ``-``."""
    name = variable.removeprefix("KAFKA_").lower()
    for encoded, decoded in (("___", "\0"), ("__", "\1"), ("_", "."), ("\0", "-"), ("\1", "_")):
        name = name.replace(encoded, decoded)
    return name


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    listeners = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        listeners[name] = (host, int(port))
    return listeners


def test_kafka_is_the_native_broker(config: dict) -> None:
    from logstream.kafka.broker import _SERVER_PROPERTIES

    native_settings = Settings.load(env={})
    native_text = _SERVER_PROPERTIES.format(
        host="native-host",
        port=native_settings.kafka_port,
        controller_port=native_settings.kafka_controller_port,
        log_dirs="native-log-dirs",
        partitions=native_settings.topic_partitions,
    )
    native = dict(
        line.split("=", 1) for line in native_text.splitlines() if line and line[0] != "#"
    )
    compose = {
        _kafka_property(k): v for k, v in _env(config, "kafka").items() if k.startswith("KAFKA_")
    }
    assert _tag(config, "kafka") == _pom_property(
        PROJECT_ROOT / "jvm" / "kafka-broker" / "pom.xml", "kafka.version"
    )
    assert set(compose) <= set(native), f"not in the native broker: {set(compose) - set(native)}"
    addresses = {
        *("listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"),
        "listener.security.protocol.map",
    }
    for key in set(native) - addresses:
        assert compose.get(key) == native[key], f"kafka {key}: {compose.get(key)} != {native[key]}"
    # the native listeners on the native ports; extra ones only for the host
    native_listeners, listeners = _listeners(native["listeners"]), _listeners(compose["listeners"])
    for name, (_, port) in native_listeners.items():
        assert listeners[name][1] == port, f"kafka listener {name} is not on port {port}"
    protocols = dict(p.split(":") for p in compose["listener.security.protocol.map"].split(","))
    for pair in native["listener.security.protocol.map"].split(","):
        assert protocols.get(pair.split(":")[0]) == pair.split(":")[1]
    voter_id, _, voter = compose["controller.quorum.voters"].partition("@")
    assert voter_id == native["node.id"]
    assert int(voter.rpartition(":")[2]) == native_settings.kafka_controller_port
    # containers bootstrap from the advertised native listener; the host's clients from the
    # default kafka_port on loopback, published to the extra listener
    advertised = _listeners(compose["advertised.listeners"])
    inter = native["inter.broker.listener.name"]
    bootstrap = f"{advertised[inter][0]}:{advertised[inter][1]}"
    for name in _logstream_services(config):
        assert _compose_settings(config, name).kafka_bootstrap == bootstrap, name
    for host_ip, host_port, target in _published(config, "kafka"):
        [extra] = [n for n, (_, port) in listeners.items() if port == target]
        assert extra not in native_listeners, "a native listener is published to the host"
        assert (
            advertised[extra] == (host_ip, host_port) == ("127.0.0.1", native_settings.kafka_port)
        )


# -- Spark ---------------------------------------------------------------------------------------
def _spark_daemons(config: dict, main_class: str) -> list[str]:
    return [name for name in _services(config) if main_class in _command(config, name)]


def _properties(path: Path) -> dict[str, str]:
    pairs = (line.split(None, 1) for line in path.read_text().splitlines())
    return {p[0]: p[1].strip() for p in pairs if p and not p[0].startswith("#")}


def test_spark_is_the_native_cluster(config: dict, tmp_path: Path) -> None:
    from logstream.runtime import cluster
    from logstream.supervisor import deploy, drivers

    defaults = inspect.signature(cluster.LocalSparkCluster).parameters
    [master] = _spark_daemons(config, cluster.MASTER_CLASS)
    workers = _spark_daemons(config, cluster.WORKER_CLASS)
    assert len(workers) == defaults["workers"].default

    master_command = _command(config, master)
    master_host, master_port = _flag(master_command, "--host"), _flag(master_command, "--port")
    master_url = f"spark://{master_host}:{master_port}"
    for name in _logstream_services(config):
        assert _compose_settings(config, name).spark_master == master_url, name
    for name in [master, *workers]:
        assert _env(config, name).get("SPARK_DAEMON_MEMORY") == cluster.DAEMON_MEMORY, name

    # the daemons' properties: the native keys, the native values but for addresses and paths
    native_ports = cluster.ClusterPorts.pick(len(workers))
    native = _properties(cluster.LocalSparkCluster(tmp_path)._properties(native_ports))
    properties_file = _flag(master_command, "--properties-file")
    compose = _properties(_in_checkout(properties_file))
    assert set(compose) == set(native)
    for key, value in native.items():
        addresses = {cluster.HOST, *map(str, native_ports.all())}
        machine_specific = value in addresses or value.startswith(str(tmp_path))
        if not machine_specific:
            assert compose[key] == value, f"{key}: {compose[key]} != native {value}"
    # the supervisor submits, polls and kills cluster-mode drivers where the master serves them
    rest_url = f"http://{compose['spark.master.rest.host']}:{compose['spark.master.rest.port']}"
    web_url = f"http://{master_host}:{_flag(master_command, '--webui-port')}"
    for name in _logstream_services(config):
        driver = deploy.driver_for(_compose_settings(config, name))
        assert isinstance(driver, drivers.StandaloneDriver), f"{name}: not in cluster mode"
        assert (driver.rest_url, driver.web_url) == (rest_url, web_url), name
    recovery = compose["spark.deploy.recoveryDirectory"]
    assert any(recovery == target for target in _mounts(config, master)), "recovery not a volume"

    # the workers: the native size, one loopback (namespace) for all, distinct ports
    addresses = set()
    for name in workers:
        command = _command(config, name)
        assert command[-1] == master_url
        assert _flag(command, "--cores") == str(defaults["worker_cores"].default)
        assert _flag(command, "--memory") == defaults["worker_memory"].default
        assert _flag(command, "--properties-file") == properties_file
        addresses |= {_flag(command, "--port"), _flag(command, "--webui-port")}
        # the master too: a driver registers with it from the workers' loopback
        assert _namespace(config, name) == _namespace(config, master)
        assert _flag(command, "--host") == _services(config)[_namespace(config, name)]["hostname"]
    assert len(addresses) == 2 * len(workers)
    for name in _logstream_services(config):
        memory = _compose_settings(config, name).spark_driver_memory
        assert _bytes(memory) <= _bytes(defaults["worker_memory"].default), f"{name}: driver"


# -- HDFS ----------------------------------------------------------------------------------------
def _site(path: Path) -> dict[str, str]:
    return {
        p.findtext("name"): p.findtext("value") for p in ET.parse(path).getroot().iter("property")
    }


def test_hdfs_is_the_native_storage(config: dict) -> None:
    from logstream.storage import remote

    # the installed pyspark's folder, found without importing it (seconds of imports)
    pyspark = Path(importlib.util.find_spec("pyspark").submodule_search_locations[0])
    [client_jar] = (pyspark / "jars").glob("hadoop-client-api-*.jar")
    hadoop_version = client_jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    servers = [
        n for n in _services(config) if _services(config)[n]["image"].startswith("apache/hadoop:")
    ]
    assert {_command(config, n)[-1] for n in servers} == {"namenode", "datanode"}
    minicluster = PROJECT_ROOT / "jvm" / "hdfs-minicluster" / "pom.xml"
    for name in servers:
        assert _tag(config, name) == hadoop_version, f"{name}: not the Hadoop of pyspark"
        assert _tag(config, name) == _pom_property(minicluster, "hadoop.version"), name

    # the native MiniDFSCluster's settings but its addresses, on the servers (clients' on both)
    native = {
        key: re.sub(r"^(\d+)L$", r"\1", value)
        for key, value in re.findall(
            r'conf\.set\w*\("([^"]+)",\s*"?([^")]*?)"?\);', MINI_HDFS.read_text()
        )
        if not re.search(r"address|bind-host|hostname", key)
    }
    assert native, f"no Hadoop settings found in {MINI_HDFS}"
    for name in servers:
        env = _env(config, name)
        for key, value in native.items():
            assert env.get(f"HDFS-SITE.XML_{key}") == value, f"{name}: {key} is not {value}"

    for name in _logstream_services(config):
        conf_dir = _env(config, name)["HADOOP_CONF_DIR"]
        client = {
            **_site(_in_checkout(f"{conf_dir}/core-site.xml")),
            **_site(_in_checkout(f"{conf_dir}/hdfs-site.xml")),
        }
        for key in (key for key in native if key.startswith("dfs.client.")):
            assert client.get(key) == native[key], f"{conf_dir}: {key} is not {native[key]}"
        for server in servers:
            env = _env(config, server)
            for key, value in client.items():
                prefix = "CORE-SITE.XML_" if f"CORE-SITE.XML_{key}" in env else "HDFS-SITE.XML_"
                assert env.get(f"{prefix}{key}") == value, f"{server}: {key} != {value}"
        filesystem = urllib.parse.urlsplit(client["fs.defaultFS"])
        settings = _compose_settings(config, name)
        # Python-side reads and writes go through the NameNode's WebHDFS (its published HTTP port)
        [namenode] = [n for n in servers if _command(config, n)[-1] == "namenode"]
        host, port, https = remote.webhdfs_address(settings, filesystem.netloc)
        assert (host, https) == (_services(config)[namenode]["hostname"], False), name
        assert port in {target for _, _, target in _published(config, namenode)}, name
        for field in ("data_root", "checkpoint_root", "status_dir", "reports_dir"):
            location = urllib.parse.urlsplit(str(getattr(settings, field)))
            assert (location.scheme, location.netloc) == (filesystem.scheme, filesystem.netloc), (
                f"{name}: {field} is not on the stack's HDFS"
            )


# -- Postgres, Redis and Airflow -------------------------------------------------------------------
def _service_of_image(config: dict, repository: str) -> str:
    [name] = [n for n, s in _services(config).items() if s["image"].startswith(f"{repository}:")]
    return name


def test_postgres_and_redis_are_the_native_servers(config: dict) -> None:
    """The metadata database's owner and name of the team Airflow; the major (Postgres) and
    major.minor (Redis) versions of Debian's servers the native tests run, when installed."""
    from logstream.errors import ServiceError
    from logstream.runtime import airflow_team, postgres, redis

    env = _env(config, _service_of_image(config, "postgres"))
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"]) == (
        airflow_team.DATABASE_OWNER,
        airflow_team.DATABASE,
    )
    compared = 0
    try:
        native_major = postgres.binaries().parts[-2]
    except ServiceError:
        native_major = None
    if native_major:
        assert _tag(config, _service_of_image(config, "postgres")).split(".")[0] == native_major
        compared += 1
    try:
        native_redis = _version_of([redis.find_binary(), "--version"])
    except ServiceError:
        native_redis = None
    if native_redis:
        image_version = _tag(config, _service_of_image(config, "redis"))
        assert _major_minor(image_version) == _major_minor(native_redis.split("v=")[1])
        compared += 1
    if not compared:
        pytest.skip("neither Debian's postgresql nor redis-server is installed (`make system`)")


def test_airflow_is_the_native_team_airflow(config: dict, dummy_secrets: dict) -> None:
    """The team Airflow's processes and environment (logstream.runtime.airflow_team), with the
    containers' addresses."""
    from logstream.runtime import airflow_team
    from logstream.runtime.postgres import Database

    base = re.search(r"^FROM\s+apache/airflow:(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert base, f"{DOCKERFILE} is not built on the official apache/airflow image"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert base.group(1) == f"{_locked_version('apache-airflow')}-python{python}"

    airflow_services = [
        n for n in _project_services(config) if "AIRFLOW__CORE__EXECUTOR" in _env(config, n)
    ]
    settings = _compose_settings(config, airflow_services[0])
    concurrency = inspect.signature(airflow_team.TeamAirflow).parameters["worker_concurrency"]
    database = Database("native-db", 1, airflow_team.DATABASE, airflow_team.DATABASE_OWNER, "pw")
    keys = {"jwt_secret": "k", "api_secret_key": "k", "fernet_key": "k"}
    native = airflow_team.team_env(
        settings, database, "redis://:pw@native-redis:1/0", keys, concurrency.default
    )
    same_value = {
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__PARALLELISM",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL",
        "AIRFLOW__LOGGING__LOGGING_LEVEL",
        "AIRFLOW__API__PORT",
        "AIRFLOW_CONN_SPARK_DEFAULT",
    }
    from_env_file = {
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
    }
    checked_below = {
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__CORE__PLUGINS_FOLDER",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__API__BASE_URL",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    }
    machine_only = {
        "AIRFLOW_HOME",  # the image's /opt/airflow
        "AIRFLOW__API__HOST",  # natively 127.0.0.1; a container listens on its own interface
        # Airflow derives it from the sync URL; natively it is empty only while asyncpg is
        # missing, and the image's postgres provider has asyncpg
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
    }
    unclassified = {k for k in native if k.startswith("AIRFLOW")} - (
        same_value | from_env_file | checked_below | machine_only
    )
    assert not unclassified, f"native team Airflow sets {unclassified}: add them to compose"

    commands = {}
    for name in airflow_services:
        env = _env(config, name)
        commands[tuple(_subcommand(_airflow_command(config, name)))] = name
        for key in same_value:
            assert env.get(key) == native[key], f"{name}: {key}={env.get(key)} != {native[key]}"
        for key in from_env_file:
            assert env.get(key) in dummy_secrets.values(), f"{name}: {key} not from .env"
        for key in ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER"):
            assert _in_checkout(env[key]) == Path(native[key]), f"{name}: {key}"
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
            url, native_url = urllib.parse.urlsplit(env[key]), urllib.parse.urlsplit(native[key])
            postgres_env = _env(config, _service_of_image(config, "postgres"))
            assert (url.scheme, url.username, url.path) == (
                native_url.scheme,
                native_url.username,
                native_url.path,
            ), f"{name}: {key}"
            assert url.hostname == _service_of_image(config, "postgres")
            assert url.password == postgres_env["POSTGRES_PASSWORD"]
        broker = urllib.parse.urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        native_broker = urllib.parse.urlsplit(native["AIRFLOW__CELERY__BROKER_URL"])
        assert (broker.scheme, broker.path) == (native_broker.scheme, native_broker.path)
        redis_service = _service_of_image(config, "redis")
        assert broker.hostname == redis_service
        assert broker.password == _env(config, redis_service)["REDIS_PASSWORD"]
        api = urllib.parse.urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        native_api = urllib.parse.urlsplit(native["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert (api.path, api.port) == (native_api.path, int(native["AIRFLOW__API__PORT"]))
        user, _, role = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].partition(":")
        assert user in dummy_secrets.values()
        assert role == native["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].partition(":")[2]
        base_url = urllib.parse.urlsplit(env["AIRFLOW__API__BASE_URL"])
        assert base_url.port == settings.airflow_port == int(native["AIRFLOW__API__PORT"])

    # one service per native process; the api-server on the native port, on loopback
    native_commands = {
        tuple(_subcommand(c.arguments)): c.name for c in airflow_team.components(settings, 1)
    }
    assert set(commands) == set(native_commands), f"{set(commands)} != {set(native_commands)}"
    api_server = commands[("api-server",)]
    assert (settings.airflow_port, settings.airflow_port) in {
        (host, target) for _, host, target in _published(config, api_server)
    }
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in _env(config, api_server)
    assert api.hostname == api_server
    # Celery's tasks start client-mode drivers: they must share the Spark workers' loopback
    from logstream.runtime import cluster

    worker_netns = {_namespace(config, n) for n in _spark_daemons(config, cluster.WORKER_CLASS)}
    assert {_namespace(config, commands[("celery", "worker")])} == worker_netns


# -- Prometheus, Alertmanager, Grafana -----------------------------------------------------------
def _listen_port(command: list[str], flag: str) -> int:
    [value] = [w.split("=", 1)[1] for w in command if w.startswith(f"{flag}=")]
    return int(value.rpartition(":")[2])


def test_monitoring_is_the_native_monitoring(config: dict) -> None:
    from logstream.ops import alertmanager as native_alertmanager
    from logstream.runtime import cluster

    native = Settings.load(env={})
    prometheus_yml = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = [j for j in prometheus_yml["scrape_configs"] if j["job_name"] == "logstream"]
    targets = [t for c in job["static_configs"] for t in c["targets"]]
    assert targets == [f"127.0.0.1:{native.metrics_port}"]
    # Prometheus scrapes the drivers' loopback: the Spark workers' and Celery's namespace
    worker_netns = {_namespace(config, n) for n in _spark_daemons(config, cluster.WORKER_CLASS)}
    assert {_namespace(config, "prometheus")} == worker_netns
    for name in _logstream_services(config):
        assert _compose_settings(config, name).metrics_port == native.metrics_port, name

    # deploy/ mounted; its relative rule files resolved beside the written config
    assert _host_path(config, "prometheus", "/etc/prometheus/prometheus.yml") == (
        DEPLOY / "prometheus" / "prometheus.yml"
    )
    script = " ".join(_command(config, "prometheus"))
    written = PurePosixPath(re.search(r"--config\.file=(\S+)", script).group(1))
    for rule in prometheus_yml["rule_files"]:
        host_file = _host_path(config, "prometheus", str(written.parent / rule))
        assert host_file == DEPLOY / "prometheus" / rule, f"{rule} is not mounted beside {written}"
    assert "alerting" not in prometheus_yml, "compose appends the alerting section itself"

    # Alertmanager: deploy/alertmanager as its working folder, off the broker's ports, the
    # address Prometheus and logstream's alert sink use
    command = _command(config, "alertmanager")
    assert _host_path(config, "alertmanager", _services(config)["alertmanager"]["working_dir"]) == (
        DEPLOY / "alertmanager"
    )
    config_file = _flag([w for c in command for w in c.split("=", 1)], "--config.file")
    assert _host_path(config, "alertmanager", config_file) == native_alertmanager.DEFAULT_CONFIG
    port = _listen_port(command, "--web.listen-address")
    assert port not in (native.kafka_port, native.kafka_controller_port)
    assert "--cluster.listen-address=" in command, "Alertmanager's gossip is on"
    assert f'"alertmanager:{port}"' in script
    for name in _logstream_services(config):
        sinks = _compose_settings(config, name).alert_sink.split(",")
        assert f"alertmanager:http://alertmanager:{port}" in sinks, name

    # Grafana: deploy/grafana's data source is the Prometheus of its namespace
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    [source] = datasources["datasources"]
    url = urllib.parse.urlsplit(source["url"])
    assert url.hostname == "127.0.0.1"
    assert url.port == _listen_port(
        _command(config, "prometheus")[0].split(), "--web.listen-address"
    )
    assert _namespace(config, "grafana") == _namespace(config, "prometheus")
    providers = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "logstream.yml").read_text()
    )
    for provider in providers["providers"]:
        assert _host_path(config, "grafana", provider["options"]["path"]) == (
            DEPLOY / "grafana" / "dashboards"
        )
    home = _env(config, "grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert _host_path(config, "grafana", home).is_file()

    # the versions the native tests run (Debian's packages), when installed
    for service, binary in (
        ("prometheus", shutil.which("prometheus")),
        ("alertmanager", _binary_or_none(native_alertmanager.find_binary)),
    ):
        output = _version_of([binary, "--version"]) if binary else None
        if output:
            assert _major_minor(_tag(config, service)) == _major_minor(output), service


def _binary_or_none(find: Any) -> str | None:
    from logstream.errors import ServiceError

    try:
        return find()
    except ServiceError:
        return None
