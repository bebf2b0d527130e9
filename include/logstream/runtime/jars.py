"""JVM artifacts from Maven Central, fetched once with ``mvn`` into a git-ignored cache.

Bundles, each described by a POM under ``jvm/``:

* ``kafka-broker``: the Apache Kafka broker (KRaft) and a log4j2 backend;
* ``spark-kafka``: Spark's Kafka connector matching the pinned pyspark, with its runtime jars;
* ``spark-s3a``: Hadoop's S3A filesystem (``s3a://``) with the AWS SDK modules it uses;
* ``hdfs-minicluster``: Hadoop's MiniDFSCluster, the local HDFS of :mod:`logstream.runtime.hdfs`;
* ``s3proxy``: an S3-compatible server, the local S3 of :mod:`logstream.runtime.s3`;
* ``yarn``: Hadoop YARN's ResourceManager and NodeManager, the local YARN of
  :mod:`logstream.runtime.yarn`.

and two jars built here with the JDK's ``javac``, against the pyspark wheel's own jars so they
always match the Spark (and Hadoop) they run with: ``logstream-spark``, the parsers' text-level
half (``jvm/logstream-spark``, see logstream.transforms.parsing), and ``hdfs-minicluster-main``,
the launcher of the local HDFS (``jvm/hdfs-minicluster/src``).

Nothing is downloaded at run time by Spark (no Ivy): the session factory hands the connector jars
to Spark through ``spark.jars``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from logstream.config import PROJECT_ROOT, Settings
from logstream.errors import MissingDependencyError
from logstream.runtime.java import find_java

BUNDLES = ("kafka-broker", "spark-kafka", "spark-s3a", "hdfs-minicluster", "s3proxy", "yarn")
#: the bundles whose jars go on Spark's classpath
SPARK_BUNDLES = ("spark-kafka", "spark-s3a")
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
    if "hdfs-minicluster" in bundles:
        build_hdfs_main_jar(settings, force=force)


_JAVAC_FLAGS = ("-nowarn", "--release", "17")


@dataclass(frozen=True)
class JavaBuild:
    """A jar compiled here from ``jvm/<source>/src/main/java`` into ``<jars_dir>/<name>/``,
    named by a digest of its sources, the compiler flags and what it is compiled against
    (``against``: pyspark's version, plus the POM of ``bundle`` when it needs that bundle's
    jars on its classpath)."""

    name: str
    source: str
    bundle: str = ""

    @property
    def sources_dir(self) -> Path:
        return JVM_DIR / self.source / "src" / "main" / "java"

    def sources(self) -> list[Path]:
        sources = sorted(self.sources_dir.rglob("*.java"))
        if not sources:
            raise MissingDependencyError(
                f"no Java sources under {self.sources_dir}: the checkout is incomplete "
                f"(jvm/{self.source} holds them); restore it from git"
            )
        return sources

    def digest(self) -> str:
        import pyspark

        digest = hashlib.sha256(f"{pyspark.__version__} {' '.join(_JAVAC_FLAGS)}".encode())
        if self.bundle:
            digest.update(_pom_digest(self.bundle).encode())
        for source in self.sources():
            digest.update(source.relative_to(self.sources_dir).as_posix().encode())
            digest.update(source.read_bytes())
        return digest.hexdigest()[:16]

    def jar(self, settings: Settings) -> Path:
        return bundle_dir(settings, self.name) / f"{self.name}-{self.digest()}.jar"

    def classpath(self, settings: Settings) -> list[str]:
        """What it compiles (and runs) against: pyspark's jars, then its bundle's."""
        extra = [str(jar) for jar in bundle_jars(settings, self.bundle)] if self.bundle else []
        return [str(spark_home() / "jars" / "*"), *extra]


UDF_BUILD = JavaBuild("logstream-spark", "logstream-spark")
HDFS_MAIN_BUILD = JavaBuild("hdfs-minicluster-main", "hdfs-minicluster", bundle="hdfs-minicluster")


def _built(settings: Settings, build: JavaBuild) -> Path:
    jar = build.jar(settings)
    if not jar.is_file():
        raise MissingDependencyError(
            f"{jar} is missing (never built, or built from other sources); "
            "run `make jars` (or `logstream jars fetch`) to compile it"
        )
    return jar


def udf_jar(settings: Settings) -> Path:
    """The compiled ``logstream-spark`` jar; raises a helpful error when it was never built."""
    return _built(settings, UDF_BUILD)


def hdfs_main_jar(settings: Settings) -> Path:
    """The compiled launcher of the local HDFS; raises a helpful error when it was never built."""
    return _built(settings, HDFS_MAIN_BUILD)


def build_udf_jar(settings: Settings, force: bool = False) -> Path:
    """Compile ``jvm/logstream-spark`` into the cache (idempotent: keyed by a source digest)."""
    return build_jar(settings, UDF_BUILD, force)


def build_hdfs_main_jar(settings: Settings, force: bool = False) -> Path:
    """Compile the local HDFS's launcher (``jvm/hdfs-minicluster/src``) into the cache
    (idempotent); needs the ``hdfs-minicluster`` bundle."""
    return build_jar(settings, HDFS_MAIN_BUILD, force)


def build_jar(settings: Settings, build: JavaBuild, force: bool = False) -> Path:
    """Compile ``build`` into the cache (idempotent: keyed by its digest).

    The jar is built in a private folder and moved into place in one step, so concurrent builds
    and running jobs never see a half-written jar; jars of other digests are then removed (a job
    still running from one keeps its open file).
    """
    target = bundle_dir(settings, build.name)
    jar = build.jar(settings)
    if jar.is_file() and not force:
        return jar
    bin_dir = Path(find_java()).resolve().parent
    javac, jar_tool = bin_dir / "javac", bin_dir / "jar"
    if not javac.is_file() or not jar_tool.is_file():
        raise MissingDependencyError(
            f"no javac/jar next to {bin_dir / 'java'}: a JDK (not only a JRE) is needed to build "
            f"{build.name}; install openjdk-17-jdk-headless or set JAVA_HOME to a JDK"
        )
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target))
    try:
        classes = staging / "classes"
        classes.mkdir()
        sources = [str(source) for source in build.sources()]
        classpath = os.pathsep.join(build.classpath(settings))
        built = staging / jar.name
        for command in (
            [str(javac), *_JAVAC_FLAGS, "-cp", classpath, "-d", str(classes), *sources],
            [str(jar_tool), "cf", str(built), "-C", str(classes), "."],
        ):
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise MissingDependencyError(
                    f"building {jar.name} failed (exit {result.returncode}):\n"
                    + (result.stdout + result.stderr).strip()
                )
        os.replace(built, jar)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for old in target.glob(f"{build.name}-*.jar"):
        if old != jar:
            old.unlink(missing_ok=True)
    return jar


def artifact_name(jar: Path) -> str:
    """``kafka-clients-3.9.1.jar`` -> ``kafka-clients``."""
    return _VERSION_SUFFIX.sub("", jar.name)


def spark_home() -> Path:
    """SPARK_HOME as spark-submit resolves it (the pyspark wheel's folder when pip-installed)."""
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


def spark_connector_jars(settings: Settings) -> list[Path]:
    """Connector jars (Kafka, S3A) that Spark does not already ship (avoids two versions on one
    classpath)."""
    shipped = {artifact_name(jar) for jar in (spark_home() / "jars").glob("*.jar")}
    jars = [jar for bundle in SPARK_BUNDLES for jar in bundle_jars(settings, bundle)]
    return [jar for jar in jars if artifact_name(jar) not in shipped]


def spark_jars(settings: Settings) -> list[Path]:
    """Everything logstream adds to Spark's classpath: the connectors and its own jar."""
    return [*spark_connector_jars(settings), udf_jar(settings)]
