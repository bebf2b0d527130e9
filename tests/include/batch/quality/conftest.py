"""The GX run shared by the quality tests: one ephemeral context and Data Docs site, with the
parameters of a finished day (fresh_since = 23:00 on DAY)."""

from __future__ import annotations

import pytest

from logstream.batch.quality.plan import expectation_parameters
from logstream.batch.quality.validation import QualityRun
from tests.include.batch.quality.support import DAY, NOW


@pytest.fixture(scope="package")
def run(spark, tmp_path_factory) -> QualityRun:
    params = expectation_parameters(DAY, now=NOW)
    return QualityRun(spark, tmp_path_factory.mktemp("docs"), params, "unit")
