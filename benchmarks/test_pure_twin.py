"""Says loudly when the pure-Python twin is missing: every other benchmark
then measures pymigjob against the floor only."""

from __future__ import annotations

import pytest

from pymigjob.cli import bench


def test_pure_twin_available():
    pure, why = bench.load_pure()
    if pure is None:
        pytest.skip(why)
    assert hasattr(pure, "Driver")
