"""The console with its data on HDFS (a MiniDFSCluster, read through WebHDFS): the tests of
tests/integration/test_console_remote.py (which runs them on S3), on the other shared storage.
The MiniDFSCluster's start (20-90 s on two busy cores) is why they run here."""

from __future__ import annotations

import pytest

from tests.integration.test_console_remote import (  # noqa: F401  (fixtures and tests, run here)
    client,
    remote,
    test_health_from_shared_status_files,
    test_late_anomalies_and_quarantine,
    test_later_views_read_only_new_files,
    test_reports_links_and_served_files,
    test_windows_final_then_live,
)

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def kind() -> str:
    return "hdfs"
