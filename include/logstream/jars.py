"""JVM artifacts from Maven Central, fetched once with ``mvn`` into a git-ignored cache.

Two bundles, each described by a POM under ``jvm/``:

* ``kafka-broker``: the Apache Kafka broker (KRaft) and a log4j2 backend;
* ``spark-kafka``: Spark's Kafka connector matching the pinned pyspark, with its runtime jars.

Nothing is downloaded at run time by Spark (no Ivy): the session factory hands these jars to
Spark through ``spark.jars``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from logstream.config import PROJECT_ROOT, Settings
from logstream.errors import MissingDependencyError

BUNDLES = ("kafka-broker", "spark-kafka")
JVM_DIR = PROJECT_ROOT / "jvm"
_VERSION_SUFFIX = re.compile(r"-\d+\.[\w.\-]*\.jar$")


def bundle_dir(settings: Settings, bundle: str) -> Path:
    return settings.jars_dir / bundle


def bundle_jars(settings: Settings, bundle: str) -> list[Path]:
    """The jars of one bundle; raises a helpful error when the bundle was never fetched."""
    jars = sorted(bundle_dir(settings, bundle).glob("*.jar"))
    if not jars:
        raise MissingDependencyError(
            f"the {bundle} jars are missing from {bundle_dir(settings, bundle)}; "
            "run `make jars` (or `logstream jars fetch`) once with network access to Maven Central"
        )
    return jars


def _pom_digest(bundle: str) -> str:
    return hashlib.sha256((JVM_DIR / bundle / "pom.xml").read_bytes()).hexdigest()


def fetch(settings: Settings, bundles: tuple[str, ...] = BUNDLES, force: bool = False) -> None:
    """Copy each bundle's runtime dependencies from Maven Central into the cache (idempotent).

    A bundle is fetched again when its POM changed since the cached copy was made (a version bump
    must never run against stale jars).
    """
    mvn = shutil.which("mvn")
    for bundle in bundles:
        target = bundle_dir(settings, bundle)
        marker = target / ".pom-sha256"
        current = marker.is_file() and marker.read_text().strip() == _pom_digest(bundle)
        if not force and current and any(target.glob("*.jar")):
            continue
        if mvn is None:
            raise MissingDependencyError(
                "Maven (`mvn`) is not on PATH; install it (apt-get install maven) to fetch the jars"
            )
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        command = [
            mvn, "-q", "-B",
            "-s", str(JVM_DIR / "settings.xml"),
            "-f", str(JVM_DIR / bundle / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            excerpt = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise MissingDependencyError(
                f"fetching the {bundle} jars with Maven failed (exit {result.returncode}); "
                f"check network access to Maven Central.\n{excerpt}"
            )
        (staging / ".pom-sha256").write_text(_pom_digest(bundle) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)


def artifact_name(jar: Path) -> str:
    """``kafka-clients-3.9.1.jar`` -> ``kafka-clients``."""
    return _VERSION_SUFFIX.sub("", jar.name)


def spark_home() -> Path:
    """SPARK_HOME as spark-submit resolves it (the pyspark wheel's folder when pip-installed)."""
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


def spark_connector_jars(settings: Settings) -> list[Path]:
    """Connector jars that Spark does not already ship (avoids two versions on one classpath)."""
    shipped = {artifact_name(jar) for jar in (spark_home() / "jars").glob("*.jar")}
    bundle = bundle_jars(settings, "spark-kafka")
    return [jar for jar in bundle if artifact_name(jar) not in shipped]
