"""Tests on real QEMU processes.  They skip -- saying why -- only where QEMU
cannot run here: the `qemu` extra (qemu.qmp, aiohttp, prometheus_client)
not installed, or no qemu-system-x86_64 (apt-get install qemu-system-x86)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def qemu_unavailable() -> str | None:
    missing = [m for m in ("qemu.qmp", "aiohttp", "prometheus_client")
               if importlib.util.find_spec(m.split(".")[0]) is None
               or (m == "qemu.qmp" and importlib.util.find_spec("qemu.qmp") is None)]
    if missing:
        return (f"the qemu extra is not installed ({', '.join(missing)} missing): "
                "pip install -e '.[qemu,test]'")
    binary = os.environ.get("PYMIGJOB_QEMU", "qemu-system-x86_64")
    if shutil.which(binary) is None:
        return f"{binary} not found: apt-get install qemu-system-x86"
    if not os.path.exists("/dev/null") or not os.access("/proc/self/stat", os.R_OK):
        return "no /proc: QEMU processes cannot be watched here"
    return None


REASON = qemu_unavailable()


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.qemu)
            if REASON is not None:
                item.add_marker(pytest.mark.skip(reason=REASON))


def pytest_report_header(config):
    return [f"qemu tests: {'skipped: ' + REASON if REASON else 'run'}"]


@pytest.fixture
def state_root():
    """A short directory (unix socket paths must fit in 108 bytes)."""
    path = tempfile.mkdtemp(prefix="mjq", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)
