"""The finalizer's thread (logstream.stream.finalizer): it waits while nothing is due.

The rounds themselves (plans, commits, a round cut short and run again) are driven through the
handler in test_batch.py; this checks the background loop.
"""

from __future__ import annotations

import time

from logstream import catalog
from logstream.alerts import Alert
from logstream.catalog import anomalies
from logstream.stream.finalizer import Finalizer, Landed
from logstream.stream.state import BatchMemory


class NoSink:
    def send(self, alert: Alert) -> bool:
        return True


def test_the_thread_waits_while_only_empty_batches_landed(spark, settings, tmp_path):
    run = settings.replace(data_root=str(tmp_path / "data"))
    families = [catalog.FAMILY_BY_NAME["error_rate"]]
    groups = [tuple(families)]
    memory = BatchMemory(spark, run, "events", groups, anomalies.Thresholds())
    finalizer = Finalizer(
        spark, run, "ingest_test", str(tmp_path / "checkpoint"), lambda: "test0000", families,
        memory, anomalies.Thresholds(), NoSink(),
    )  # fmt: skip
    looked = []
    plan = finalizer._next

    def counted():
        looked.append(time.monotonic())
        return plan()

    finalizer._next = counted
    finalizer.landed(Landed(0, None, None))  # a batch without rows: nothing can be final
    finalizer.start()
    try:
        time.sleep(1.5)
        assert looked == []  # a spinning loop would have asked thousands of times
        assert finalizer.error is None
    finally:
        finalizer.stop()
