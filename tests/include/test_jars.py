"""The connector jars match the pinned pyspark and do not duplicate Spark's own jars."""

from __future__ import annotations

import re
from pathlib import Path

import pyspark

from logstream.jars import JVM_DIR, artifact_name, spark_connector_jars, spark_home


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
