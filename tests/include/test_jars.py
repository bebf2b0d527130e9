"""The connector jars match the pinned pyspark and do not duplicate Spark's own jars; logstream's
own jar is built from jvm/logstream-spark and handed to Spark."""

from __future__ import annotations

import dataclasses
import re
import zipfile
from pathlib import Path

import pyspark
import pytest

from logstream.errors import MissingDependencyError
from logstream.runtime.jars import (
    JVM_DIR,
    artifact_name,
    build_udf_jar,
    spark_connector_jars,
    spark_home,
    spark_jars,
    udf_jar,
)


def test_connector_pom_matches_pinned_pyspark():
    pom = (JVM_DIR / "spark-kafka" / "pom.xml").read_text()
    (version,) = re.findall(r"<spark.version>([^<]+)</spark.version>", pom)
    assert version == pyspark.__version__


def test_connector_jars_exclude_what_spark_ships(settings):
    names = {artifact_name(jar) for jar in spark_connector_jars(settings)}
    shipped = {artifact_name(jar) for jar in (spark_home() / "jars").glob("*.jar")}
    assert "spark-sql-kafka-0-10_2.13" in names
    assert "kafka-clients" in names
    assert not names & shipped


def test_artifact_name_strips_versions():
    assert artifact_name(Path("kafka-clients-3.9.1.jar")) == "kafka-clients"
    assert artifact_name(Path("spark-sql-kafka-0-10_2.13-4.1.1.jar")) == "spark-sql-kafka-0-10_2.13"
    assert artifact_name(Path("zstd-jni-1.5.6-10.jar")) == "zstd-jni"


def test_logstream_spark_jar_is_built_and_handed_to_spark(settings):
    jar = udf_jar(settings)
    assert jar in spark_jars(settings)
    built = jar.stat()
    assert build_udf_jar(settings) == jar  # idempotent: same sources, same pyspark, no rebuild
    assert (jar.stat().st_ino, jar.stat().st_mtime_ns) == (built.st_ino, built.st_mtime_ns)
    with zipfile.ZipFile(jar) as archive:
        names = set(archive.namelist())
    assert {"dev/logstream/spark/LogTokens.class", "dev/logstream/spark/UserEventTokens.class"} <= (
        names
    )


def test_missing_logstream_spark_jar_says_how_to_build_it(settings, tmp_path):
    empty = dataclasses.replace(settings, jars_dir=tmp_path)
    with pytest.raises(MissingDependencyError, match="make jars"):
        udf_jar(empty)


def test_logstream_spark_jar_builds_from_scratch_and_replaces_other_builds(settings, tmp_path):
    fresh = dataclasses.replace(settings, jars_dir=tmp_path)
    stale = tmp_path / "logstream-spark" / "logstream-spark-0000000000000000.jar"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an older build")
    jar = build_udf_jar(fresh)
    assert jar == udf_jar(fresh) and jar.parent == stale.parent
    assert not stale.exists()
    assert [path.name for path in jar.parent.iterdir()] == [jar.name]  # no staging left behind
    with zipfile.ZipFile(jar) as archive:
        assert "dev/logstream/spark/Records.class" in archive.namelist()


def test_hadoop_poms_match_the_hadoop_client_pyspark_ships():
    (client,) = (spark_home() / "jars").glob("hadoop-client-api-*.jar")
    shipped = client.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    for bundle in ("spark-s3a", "hdfs-minicluster", "yarn"):
        pom = (JVM_DIR / bundle / "pom.xml").read_text()
        assert re.findall(r"<hadoop.version>([^<]+)</hadoop.version>", pom) == [shipped], bundle


def test_s3a_jars_reach_spark_without_the_aws_bundle_or_a_second_commons_logging(settings):
    names = {artifact_name(jar) for jar in spark_jars(settings)}
    assert {"hadoop-aws", "s3", "s3-transfer-manager"} <= names
    assert not names & {"bundle", "commons-logging"}
