"""The one place a SparkSession is built: jobs, the batch replay and tests all come through here.

Local mode by default (``local[*]``); any master (``spark://``, ``yarn``, ``k8s://``) by setting
``spark_master``. Spark's Kafka connector is attached through ``spark.jars`` from the Maven cache,
so nothing is resolved through Ivy at run time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

from logstream.config import Settings
from logstream.runtime.jars import spark_home, spark_jars
from logstream.runtime.java import java_home
from logstream.storage.remote import s3a_options, s3a_secret_options

#: the streaming job's scheduler pools (landing first, then the finalizer's rounds)
FAIR_POOLS = Path(__file__).with_name("fairscheduler.xml")


def spark_conf(
    settings: Settings, extra: Mapping[str, str] | None = None, jars: bool = True
) -> dict[str, str]:
    """The configuration the factory applies, exposed for spark-submit and for inspection;
    without ``jars``, no ``spark.jars`` (a driver that spark-submit started has them already,
    and on a cluster node it may not see the submitter's Spark installation to list them)."""
    conf = {
        "spark.master": settings.spark_master,
        "spark.driver.memory": settings.spark_driver_memory,
        # spark-submit must run our Python (the venv with logstream), not the first python3 on PATH
        "spark.pyspark.python": settings.pyspark_python or sys.executable,
        "spark.pyspark.driver.python": settings.pyspark_python or sys.executable,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": str(settings.spark_ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "true",
        # the job caches each parsed micro-batch once and reads it a few times: building an
        # uncompressed cache is cheaper than compressing what lives for seconds
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        # a micro-batch spans few event hours: keep a writer per partition open instead of
        # sorting every task's rows by partition
        "spark.sql.maxConcurrentOutputFileWriters": "16",
        # per-IP and per-user windows have many keys per task: keep collect_set's hash map up to
        # 100k keys instead of falling back to sorting after 128 (measured 1.7x on those groups)
        "spark.sql.objectHashAggregate.sortBased.fallbackThreshold": "100000",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # Parquet timestamps as INT64 microseconds (Spark's default is the deprecated 12-byte
        # INT96): smaller files, and the bronze write measured 21 % faster
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # a micro-batch of the logs pipeline runs about 220 distinct generated classes; Spark's
        # cache of compiled classes holds 100 by default, so every batch compiled them all again
        # (Janino, then the JVM's JIT: measured 950 compiles in a 2M catch-up, 370 with this)
        "spark.sql.codegen.cache.maxEntries": "1000",
        # a micro-batch's landing and the finalizer's rounds run in pools of their own, the
        # landing first (logstream.stream.parallel), so a long round never queues a landing
        "spark.scheduler.mode": "FAIR",
        "spark.scheduler.allocation.file": str(FAIR_POOLS),
        # local runs stay on loopback
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    }
    # s3a:// endpoint, path style and region (no secrets: see build_spark_session)
    conf.update({f"spark.hadoop.{key}": value for key, value in s3a_options(settings).items()})
    if jars:
        conf["spark.jars"] = ",".join(str(jar) for jar in spark_jars(settings))
    if settings.spark_java_options:
        conf["spark.driver.extraJavaOptions"] = settings.spark_java_options
        conf["spark.executor.extraJavaOptions"] = settings.spark_java_options
    if extra:
        conf.update(extra)
    return conf


def build_spark_session(
    app_name: str,
    settings: Settings | None = None,
    extra_conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Return the active session or build one with logstream's defaults."""
    settings = settings or Settings.load()
    if "JAVA_HOME" not in os.environ:
        # pyspark finds java on PATH too; JAVA_HOME keeps spark-submit and the provider happy
        os.environ["JAVA_HOME"] = java_home()
    launched = bool(os.environ.get("PYSPARK_GATEWAY_PORT"))
    conf = spark_conf(settings, extra_conf, jars=not launched)
    if launched:
        # launched by spark-submit: its --master, driver memory and --jars are already in force
        conf.pop("spark.master")
        conf.pop("spark.driver.memory")
    builder = SparkSession.builder.appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    # the storage options also reach a session that already existed; S3 credentials are set in
    # the driver's session only, never onto a spark-submit command line (tasks get them with the
    # Hadoop configuration Spark ships to them)
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in {**s3a_options(settings), **s3a_secret_options(settings)}.items():
        hadoop_conf.set(key, value)
    spark.sparkContext.setLogLevel(os.environ.get("LOGSTREAM_SPARK_LOG_LEVEL", "WARN"))
    return spark


def spark_submit_command(
    settings: Settings,
    application: str | Path,
    application_args: list[str] | None = None,
    extra_conf: Mapping[str, str] | None = None,
) -> list[str]:
    """argv for ``spark-submit`` with the same configuration as :func:`build_spark_session`.

    The connector jars go through ``--jars`` because, under spark-submit, the driver's class
    loader is set up from the command line before any Python runs.

    With ``spark_deploy_mode=cluster`` (and a non-local master) the driver runs on the cluster:
    on YARN and Kubernetes the Python file is submitted as it is; a standalone master refuses
    Python applications in cluster mode, so the submission's primary resource is the project's
    ``logstream-spark`` jar with ``org.apache.spark.deploy.PythonRunner`` as main class and the
    Python file, an empty ``--py-files`` list and the job's arguments as its arguments (the
    master's DriverWrapper runs PythonRunner on a worker, which starts ``spark.pyspark.python``).
    It goes through the master's REST submission server (``spark_rest_url``), which also answers
    for the driver's status and kill. A driver on a remote host does not bind to loopback.
    """
    from logstream.runtime.jars import udf_jar

    conf = spark_conf(settings, extra_conf)
    master = conf.pop("spark.master")
    jars = conf.pop("spark.jars")
    cluster = settings.spark_deploy_mode == "cluster" and not master.startswith("local")
    arguments = [str(application), *(application_args or [])]
    main_class: list[str] = []
    if cluster:
        conf["spark.executor.memory"] = settings.spark_executor_memory
        conf["spark.executor.cores"] = str(settings.spark_executor_cores)
        if settings.spark_cores_max:
            conf["spark.cores.max"] = str(settings.spark_cores_max)
        if not any(host in master for host in ("127.0.0.1", "localhost")):
            conf.pop("spark.driver.host")
            conf.pop("spark.driver.bindAddress")
        if master.startswith("spark://"):
            # the supervisor decides about restarts, not the master
            conf["spark.driver.supervise"] = "false"
            conf["spark.master.rest.enabled"] = "true"
            master = standalone_rest_master(settings)
            main_class = ["--class", "org.apache.spark.deploy.PythonRunner"]
            arguments = [str(udf_jar(settings)), str(application), "", *(application_args or [])]
    command = [str(spark_home() / "bin" / "spark-submit"), "--master", master, "--jars", jars]
    if cluster:
        command += ["--deploy-mode", "cluster", *main_class]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, *arguments]


def standalone_rest_master(settings: Settings) -> str:
    """``spark://host:port`` of a standalone master's REST submission server: ``spark_rest_url``
    (``http://host:port``), else ``spark_master``'s host on port 6066."""
    if settings.spark_rest_url:
        return "spark://" + settings.spark_rest_url.split("://", 1)[-1].rstrip("/")
    host = settings.spark_master.split("://", 1)[-1].split(",")[0].rsplit(":", 1)[0]
    return f"spark://{host}:6066"
