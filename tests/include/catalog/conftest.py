"""The catalogue tests compare rows in :mod:`tests.include.catalog.support`: let pytest explain
a failing comparison there as it does in a test module."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("tests.include.catalog.support")
