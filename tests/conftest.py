"""Shared fixtures for the pymigjob test suite.

The helpers live in ``_mjhelpers.py`` next to this file; the directory is put
on ``sys.path`` here so that the suite works under every pytest import mode
(the project runs pytest with ``--import-mode=importlib``).
"""

from __future__ import annotations

import faulthandler
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pymigjob as mj  # noqa: E402

try:  # pragma: no cover - depends on the environment
    import pytest_timeout  # noqa: F401

    HAVE_PYTEST_TIMEOUT = True
except ImportError:  # pragma: no cover
    HAVE_PYTEST_TIMEOUT = False

#: per-test ceiling; every test is meant to take well under a second or two
PER_TEST_TIMEOUT = 60


def pytest_collection_modifyitems(config, items):
    """Turn a deadlock into a failure instead of a hung run.

    With pytest-timeout installed every test without its own marker gets one;
    without it the ``_deadlock_guard`` fixture below dumps the stacks and
    exits the process.
    """
    if not HAVE_PYTEST_TIMEOUT:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(PER_TEST_TIMEOUT))


@pytest.fixture(autouse=True)
def _deadlock_guard():
    if HAVE_PYTEST_TIMEOUT:
        yield
        return
    faulthandler.dump_traceback_later(PER_TEST_TIMEOUT * 2, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def drv():
    """A driver with a short default wait, so a wrong wait fails fast."""
    return mj.Driver(job_wait_timeout=5.0)


@pytest.fixture
def dom(drv):
    return drv.add_domain("vm1")
