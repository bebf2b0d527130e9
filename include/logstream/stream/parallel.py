"""Independent Spark actions from a few driver threads, in a named scheduler pool.

The job runs Spark's FAIR scheduler (:func:`logstream.runtime.spark.spark_conf`): the landing of
a micro-batch and the finalizer's rounds (:mod:`logstream.stream.finalizer`) submit jobs in pools
of their own, so a long finalization shares the cores with a landing instead of queueing it.
Spark keeps the pool as a property of the submitting thread, so every thread sets it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import SparkSession

LANDING_POOL = "landing"
FINALIZE_POOL = "finalize"


def use_pool(spark: SparkSession, pool: str) -> None:
    """Submit this thread's Spark jobs in ``pool``."""
    spark.sparkContext.setLocalProperty("spark.scheduler.pool", pool)


def run_parallel(
    spark: SparkSession, pool: str, tasks: list[Callable[[], object]], workers: int = 4
) -> None:
    """Run ``tasks`` side by side on worker threads in ``pool``; the first error is raised once
    every task has ended."""
    if len(tasks) <= 1:
        for task in tasks:
            task()
        return

    def pooled(task: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            use_pool(spark, pool)
            return task()

        return run

    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as executor:
        futures = [executor.submit(pooled(task)) for task in tasks]
        errors = []
        for future in futures:
            try:
                future.result()
            except BaseException as exc:  # noqa: BLE001 - raised below, after every task ended
                errors.append(exc)
        if errors:
            raise errors[0]
