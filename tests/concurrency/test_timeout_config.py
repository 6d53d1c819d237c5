"""pytest-timeout's method: a test hung inside C -- a
mutex never released -- must fail the run, not hang it.  SIGALRM (the signal
method) only sets a flag that the blocked thread never gets back to Python
to see; the thread method's watchdog reports it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HANG = textwrap.dedent("""\
    import ctypes

    import pytest


    @pytest.mark.timeout(1)
    def test_blocked_in_c():
        libc = ctypes.CDLL(None)
        mutex = ctypes.create_string_buffer(64)  # zeroed: PTHREAD_MUTEX_INITIALIZER
        assert libc.pthread_mutex_lock(mutex) == 0
        libc.pthread_mutex_lock(mutex)  # never released: blocks inside C
""")


def test_the_project_configures_the_thread_method(request):
    assert request.config.getini("timeout_method") == "thread"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's pthread_mutex")
def test_a_hang_inside_c_fails_the_run(tmp_path):
    test = tmp_path / "test_hang.py"
    test.write_text(HANG)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-c", os.path.join(ROOT, "pyproject.toml"),
             "--rootdir", str(tmp_path), "-p", "no:cacheprovider", "-q", str(test)],
            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the run hung: pytest-timeout did not end a test blocked in C")
    assert time.monotonic() - t0 < 50
    assert proc.returncode != 0
    assert "Timeout" in proc.stdout + proc.stderr
    assert "test_blocked_in_c" in proc.stdout + proc.stderr  # its stack is dumped
