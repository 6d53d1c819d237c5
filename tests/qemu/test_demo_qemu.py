"""``python -m pymigjob demo --qemu``: the demo, its crash and measure
modes, and what it says when QEMU cannot run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from _qemu_skip import REASON


def _demo(*args, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "pymigjob", "demo", "--qemu", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def test_without_qemu_it_says_how_to_install_and_fails():
    done = _demo(env={"PYMIGJOB_QEMU": "no-such-qemu"})
    assert done.returncode == 2
    assert "apt-get install qemu-system-x86" in done.stderr or \
        "pip install 'pymigjob[qemu]'" in done.stderr


def test_the_simulated_demo_stays_the_default():
    done = subprocess.run([sys.executable, "-m", "pymigjob", "demo", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--qemu" not in done.stdout.split("options")[0]


@pytest.mark.skipif(REASON is not None, reason=str(REASON))
def test_demo_runs_on_real_qemu():
    done = _demo("--guests", "3", "--rounds", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for needle in ("timeline", "summary", "query latency during migrations",
                   "guests (their QEMUs, asked directly)", "invariants: ok"):
        assert needle in out, out
    assert " completed [prepare3" in out


@pytest.mark.skipif(REASON is not None, reason=str(REASON))
def test_crash_mode():
    done = _demo("--crash", "--kills", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kills (4 at their point)" in done.stdout and "all invariants held" in done.stdout


@pytest.mark.skipif(REASON is not None, reason=str(REASON))
def test_measure_mode(tmp_path):
    import json
    done = _demo("--measure", "--json", str(tmp_path / "m.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    print(done.stdout)
    m = json.loads((tmp_path / "m.json").read_text())
    # the naive daemon makes queries wait out whole migrations
    assert m["naive"]["p50_ms"] > m["job model"]["p50_ms"]
    assert m["naive"]["p99_ms"] > 2 * m["job model"]["p50_ms"]
    assert 0 < m["bookkeeping without records"]["fraction"] < m["bookkeeping"]["fraction"]
