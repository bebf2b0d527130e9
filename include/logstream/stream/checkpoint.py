"""What an ingestion query's handler reads from the query's Spark checkpoint: where it is, the
query's id and each micro-batch's timestamp.

The handler takes the id and the timestamp through :class:`QueryCheckpoint` only in production;
tests give it their own (see :class:`logstream.stream.batch.IngestBatchHandler`).
"""

from __future__ import annotations

import json

from logstream.config import Settings
from logstream.storage.fs import HadoopFS


def checkpoint_path(settings: Settings, query_name: str) -> str:
    return f"{settings.checkpoint_root.rstrip('/')}/{query_name}"


class QueryCheckpoint:
    """The ``metadata`` file and the offset log of one query's checkpoint folder."""

    def __init__(self, fs: HadoopFS, checkpoint: str) -> None:
        self.fs = fs
        self.checkpoint = checkpoint

    def query_id(self) -> str:
        """The query's id (its first 8 characters). Sink commit markers are scoped by it, so a
        new checkpoint (batch ids from 0 again) never collides with an old run's markers."""
        metadata = self.fs.read_text(f"{self.checkpoint}/metadata")
        if not metadata:
            raise RuntimeError(f"checkpoint {self.checkpoint} has no metadata file yet")
        return json.loads(metadata.splitlines()[0])["id"][:8]

    def batch_time_ms(self, batch_id: int) -> int:
        """The micro-batch's timestamp from the offset log (what ``current_timestamp()`` is in
        the batch): identical when Spark replays the batch after a failure."""
        entry = f"{self.checkpoint}/offsets/{batch_id}"
        for line in (self.fs.read_text(entry) or "").splitlines():
            if line.startswith("{") and "batchTimestampMs" in line:
                return int(json.loads(line)["batchTimestampMs"])
        raise RuntimeError(
            f"the offset log entry {entry} has no batch timestamp; "
            "is the checkpoint damaged? Restore it or start the query on a new checkpoint"
        )
