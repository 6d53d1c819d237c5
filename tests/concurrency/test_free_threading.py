"""Free-threaded CPython (3.14t): importing and using pymigjob keeps the GIL off.

cffi 2.x declares every API-mode module (pymigjob._c._core, and its own
_cffi_backend) Py_MOD_GIL_NOT_USED, and the rest of pymigjob is Python.  A
module without that declaration would make the interpreter turn the GIL back
on at import, with a RuntimeWarning -- unless PYTHON_GIL=0 forces it off,
which is how CI runs the suite on 3.14t.  So the real check runs in a child
process with PYTHON_GIL removed from its environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

import pytest

pytestmark = pytest.mark.skipif(
    not sysconfig.get_config_var("Py_GIL_DISABLED"),
    reason="not a free-threaded CPython build (Py_GIL_DISABLED unset): the GIL is always on",
)

CHILD = r"""
import asyncio, sys

def gil_off(after):
    assert not sys._is_gil_enabled(), "the GIL was turned on " + after

gil_off("at start-up")
import pymigjob as mj
gil_off("by import pymigjob")
import pymigjob._c._core
gil_off("by import pymigjob._c._core")

# the C core: a sync job, a v3 migration with a nested job, a waiter that times out
drv = mj.Driver(job_wait_timeout=5.0)
dom = drv.add_domain("vm1")
with dom.job(mj.Job.MODIFY, api="setMemory"):
    assert dom.refs == 2
with dom.migration(mj.AsyncJob.MIGRATION_OUT, mj.Phase.BEGIN3, api="begin3"):
    pass
with dom.migration_phase(mj.AsyncJob.MIGRATION_OUT, mj.Phase.PERFORM3) as mig:
    with dom.nested_job(mj.AsyncJob.MIGRATION_OUT):
        pass
    mig.finish()
dom.begin_job(mj.Job.QUERY)
try:
    dom.begin_job(mj.Job.MODIFY, timeout=0.01)
except mj.JobTimeout:
    pass
dom.end_job()

async def main():
    async with dom.job_async(mj.Job.QUERY, api="stats"):
        pass
asyncio.run(main())
gil_off("by using the C core")

# the pure twin
import pymigjob.pure as pure
pdom = pure.Driver().add_domain("vm1")
with pdom.job(pure.Job.MODIFY):
    assert pdom.refs == 2
gil_off("by the pure twin")
print("gil off:", mj.Driver.__module__, pymigjob._c._core.__file__)
"""


def test_gil_stays_off_after_import_and_use():
    env = dict(os.environ)
    env.pop("PYTHON_GIL", None)       # let any module turn the GIL back on
    env.pop("PYMIGJOB_IMPL", None)    # `import pymigjob` is the C core here
    proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", CHILD],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert "gil off: pymigjob._c.driver" in proc.stdout


@pytest.mark.skipif(os.environ.get("PYTHON_GIL") == "1", reason="PYTHON_GIL=1 turns the GIL on")
def test_gil_is_off_in_this_process():
    import pymigjob  # noqa: F401 (whichever implementation was chosen)
    import pymigjob.pure  # noqa: F401

    assert sys._is_gil_enabled() is False
