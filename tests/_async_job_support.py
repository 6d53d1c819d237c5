"""What the tests of libvirt 11's async job life share (tests/core/
test_postcopy.py, test_jobdata.py, test_cleanups.py): the backend under
test and a domain of a fresh driver, as fixtures (import them into the test
module), and the wall clock in ms as job data counts it."""

from __future__ import annotations

import time

import pytest


@pytest.fixture
def mj(M):
    """conftest's M: the C-backed package, then the twin."""
    return M


@pytest.fixture
def dom(mj):
    return mj.Driver(job_wait_timeout=5.0).add_domain("vm1")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000
