"""Shared fixtures for the pymigjob test suite.

The helpers live in ``_mjhelpers.py`` next to this file; the directory is put
on ``sys.path`` here so that the suite works under every pytest import mode
(the project runs pytest with ``--import-mode=importlib``).
"""

from __future__ import annotations

import logging
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
    """PYMIGJOB_EXPECT_INSTALLED=1 (.ci/wheel.sh, .ci/freethreaded.sh): the
    suite is meant for an installed wheel, so refuse to run if ``pymigjob``
    would come from anywhere but site-packages (e.g. a source tree)."""
    if os.environ.get("PYMIGJOB_EXPECT_INSTALLED") == "1":
        where = _pymigjob_location()
        if "site-packages" not in where.split(os.sep):
            raise pytest.UsageError(
                f"PYMIGJOB_EXPECT_INSTALLED=1 but pymigjob is not an installed package: {where}")


def _pymigjob_location() -> str:
    import importlib.util

    spec = importlib.util.find_spec("pymigjob")  # without importing it
    if spec is None or not spec.submodule_search_locations:
        return "not importable"
    return list(spec.submodule_search_locations)[0]


def pytest_report_header(config):
    gil = getattr(sys, "_is_gil_enabled", None)
    return [f"pymigjob: {_pymigjob_location()} "
            f"(PYMIGJOB_IMPL={os.environ.get('PYMIGJOB_IMPL', '')!r}); "
            f"GIL enabled: {gil() if gil else True}"]


def pytest_collection_modifyitems(config, items):
    """The suite runs against whichever backend ``import pymigjob`` chose
    (PYMIGJOB_IMPL); the tests that look inside the C core (marked c_core)
    skip by capability when the chosen backend has none."""
    import pymigjob

    if "c_core" in pymigjob.backend_features:
        return
    skip = pytest.mark.skip(reason=f"looks inside the C core; the backend is "
                                   f"{pymigjob.backend!r} (PYMIGJOB_IMPL)")
    for item in items:
        if "c_core" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["c", "pure"])
def M(request):
    """The backend's package, the test run over each: pymigjob over the C
    core, or the pure twin (the C run skips where the C core is not the
    chosen backend)."""
    import pymigjob
    import pymigjob.pure

    if request.param == "pure":
        return pymigjob.pure
    if "c_core" not in pymigjob.backend_features:
        pytest.skip("the C core is not the chosen backend")
    return pymigjob


@pytest.fixture
def drv():
    """A driver with a short default wait, so a wrong wait fails fast."""
    import pymigjob as mj  # here, not at import: a missing C core fails only its users

    return mj.Driver(job_wait_timeout=5.0)


@pytest.fixture
def dom(drv):
    return drv.add_domain("vm1")


@pytest.fixture
def logs(caplog):
    """caplog at DEBUG, logger ``pymigjob`` included."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="pymigjob")
    return caplog
