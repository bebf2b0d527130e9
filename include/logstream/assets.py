"""Airflow Assets shared between producer and consumer DAGs (one definition, imported by both).

Light on purpose: DAG files import this at module level.
"""

from __future__ import annotations

from airflow.sdk import Asset

#: `reconciled/<metric>` partitions, written by late_data_reconciliation
RECONCILED = Asset("logstream_reconciled")
#: emitted by data_quality only when every suite passed: what downstream publishing waits for
QUALITY_PASSED = Asset("logstream_quality_passed")
#: the `latency_report` table and its HTML report
LATENCY_REPORT = Asset("logstream_latency_report")
