"""What logstream computes: the metric families (one module per table under ``families/``),
the aggregates they are built from, and the anomaly rules over their windows.

Everything downstream derives from these declarations: table schemas
(:mod:`logstream.storage.tables`), the stream and replay aggregation
(:mod:`logstream.transforms.aggregate`), reconciliation (:mod:`logstream.batch.reconcile`) and the
quality suites (:mod:`logstream.batch.quality`).
"""

from __future__ import annotations

from logstream.catalog.families import FAMILIES, FAMILY_BY_NAME, configured_families
from logstream.catalog.model import Family, Metric

__all__ = ["FAMILIES", "FAMILY_BY_NAME", "Family", "Metric", "configured_families"]
