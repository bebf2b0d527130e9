#!/usr/bin/env bash
# One Spark standalone daemon of docker-compose.yml (master or worker), run in the foreground by
# `spark-class` from the installed pyspark, as logstream.runtime.cluster runs them natively.
# Usage: spark-daemon.sh <main class> [arguments...]
set -euo pipefail
spark_home="$(python -c 'from logstream.runtime.jars import spark_home; print(spark_home())')"
export SPARK_HOME="${spark_home}"
exec "${spark_home}/bin/spark-class" "$@"
