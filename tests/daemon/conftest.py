"""Tests of the reference daemon (in-process daemons on loopback addresses,
real QEMU).  Skipped, saying why, where QEMU cannot run (see tests/qemu)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(os.path.dirname(here), "qemu"))


@pytest.fixture
def state_root():
    path = tempfile.mkdtemp(prefix="mjd", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)
