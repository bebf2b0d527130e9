"""Where a micro-batch's time goes: the wall time of each stage, one DEBUG line per batch.

Stages run on several driver threads at once, so each is recorded as its start and end (ms
from the batch's start), not only its length: the line is the batch's timeline. Enable it with
``LOGSTREAM_LOG_LEVEL=DEBUG`` (logger ``logstream.stream.timeline``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Timeline:
    """The stages of one micro-batch, as ``name -> (start ms, end ms)`` from the batch's start."""

    def __init__(self) -> None:
        self._origin = time.monotonic()
        self._lock = threading.Lock()
        self.stages: dict[str, tuple[int, int]] = {}

    def _ms(self) -> int:
        return round((time.monotonic() - self._origin) * 1000)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = self._ms()
        try:
            yield
        finally:
            with self._lock:
                self.stages[name] = (start, self._ms())

    def log(self, query: str, batch_id: int) -> None:
        if log.isEnabledFor(logging.DEBUG):
            stages = " ".join(f"{name}:{s}-{e}" for name, (s, e) in self.stages.items())
            log.debug(
                "batch timeline",
                extra={"query": query, "batch": batch_id, "total_ms": self._ms(), "stages": stages},
            )
