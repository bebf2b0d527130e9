"""Smallest real Spark job: proves spark-submit, the session factory and the Kafka connector work.

    spark-submit jobs/environment_check.py [--rows N] [--config FILE] [--set key=value ...]

Prints one JSON line: Spark version, master, a checksum computed by Spark, and whether the Kafka
source is on the classpath. Exit code 1 if the connector is missing.
"""

from __future__ import annotations

import argparse
import json
import sys

from pyspark.sql import functions as F

from logstream.config import add_settings_arguments, settings_from_arguments
from logstream.runtime.spark import build_spark_session


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1000)
    add_settings_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    spark = build_spark_session("logstream-environment-check", settings_from_arguments(args))
    total = spark.range(1, args.rows + 1).agg(F.sum("id").alias("total")).first()["total"]
    jvm = spark.sparkContext._jvm
    try:
        # resolves the "kafka" format the way spark.read.format("kafka") does
        provider = jvm.org.apache.spark.sql.execution.datasources.DataSource.lookupDataSource(
            "kafka", spark._jsparkSession.sessionState().conf()
        )
        kafka_connector = "kafka010" in provider.getName()
    except Exception:  # noqa: BLE001 - Py4J wraps ClassNotFoundException
        kafka_connector = False
    result = {
        "spark_version": spark.version,
        "master": spark.sparkContext.master,
        "rows": args.rows,
        "sum": total,
        "kafka_connector": kafka_connector,
    }
    print(json.dumps(result))
    spark.stop()
    return 0 if kafka_connector else 1


if __name__ == "__main__":
    sys.exit(main())
