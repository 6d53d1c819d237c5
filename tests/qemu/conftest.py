"""Tests on real QEMU processes.  Each module starts with require_qemu(),
which skips it -- saying why -- only where QEMU cannot run here: the `qemu`
extra (qemu.qmp, aiohttp, prometheus_client) not installed, or no
qemu-system-x86_64 (apt-get install qemu-system-x86)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _qemu_skip import REASON  # noqa: E402


def pytest_report_header(config):
    return [f"qemu tests: {'skipped: ' + REASON if REASON else 'run'}"]


@pytest.fixture
def state_root():
    """A short directory (unix socket paths must fit in 108 bytes)."""
    path = tempfile.mkdtemp(prefix="mjq", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)
