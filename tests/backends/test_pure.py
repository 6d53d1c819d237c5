"""The pure twin itself: importing it (next to the C core, or without one),
and its safety against an interrupt at any line of a blocked begin.  (Its
behaviour is the C-backed one: tests/backends/test_differential.py, and the whole
suite under PYMIGJOB_IMPL=pure.)"""

from __future__ import annotations

import pytest

import pymigjob.pure as pure
from _interrupts import (BEGINS, LONG_WAIT, interrupt_on_return, interrupted_blocked_begins,
                         interrupted_coroutine_begins, traced)
from _mjhelpers import Holder
from _nocore import run

J, A = pure.Job, pure.AsyncJob

# ---- importing ---------------------------------------------------------------------

def test_import_pymigjob_pure_without_the_c_core():
    """`import pymigjob.pure` is an explicit choice: it works with no C core
    and no PYMIGJOB_IMPL; pymigjob's own names stay unavailable, loudly."""
    done = run("""
import pymigjob.pure as p
dom = p.Driver().add_domain("vm1")
with dom.migration(p.AsyncJob.MIGRATION_OUT, p.Phase.BEGIN3, api="begin3"):
    assert dom.refs == 2
assert p.Phase.PERFORM2.label == "perform2" and p.phase_to_string(1, 3) == "perform3"
assert str(p.OperationInvalid("x")) == "Requested operation is not valid: x"
import pymigjob
assert "pymigjob._c._core" not in sys.modules and "_cffi_backend" not in sys.modules
try:
    pymigjob.Driver
except ImportError as exc:
    assert "only pymigjob.pure was imported" in str(exc), exc
else:
    raise AssertionError("pymigjob.Driver without the C core")
try:
    from pymigjob import Job
except ImportError:
    pass
else:
    raise AssertionError("from pymigjob import Job without the C core")
assert not hasattr(pymigjob, "_nothing")
print("pure only ok")
""")
    assert done.returncode == 0, done.stderr
    assert "pure only ok" in done.stdout


def test_import_module_pymigjob_pure_without_the_c_core():
    done = run("""
import importlib
p = importlib.import_module("pymigjob.pure")
assert p.Driver().add_domain("a").refs == 1
print("ok")
""")
    assert done.returncode == 0, done.stderr


def test_from_pymigjob_import_pure_needs_the_core_or_the_variable():
    """`from pymigjob import pure` imports pymigjob first: without the C core
    that is the ImportError (which names both ways out); with
    PYMIGJOB_IMPL=pure it works."""
    done = run("from pymigjob import pure")
    assert done.returncode != 0
    assert "PYMIGJOB_IMPL=pure" in done.stderr and "import pymigjob.pure" in done.stderr
    done = run("from pymigjob import pure; print(pure.Driver)", impl="pure")
    assert done.returncode == 0, done.stderr


def test_unknown_impl_is_an_import_error():
    done = run("import pymigjob", impl="fast", no_core=False)
    assert done.returncode != 0
    assert "PYMIGJOB_IMPL='fast' is not a pymigjob implementation" in done.stderr


@pytest.mark.parametrize("value", ["", "c", "C", " c "])
def test_c_spellings_select_the_core(value):
    done = run("import pymigjob; print(pymigjob.Driver.__module__)", impl=value, no_core=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pymigjob._c.driver"


def test_pure_mode_never_loads_the_core():
    done = run("""
import sys, pymigjob
import pymigjob.persist.status, pymigjob.guards, pymigjob.enums, pymigjob.errors
assert pymigjob.Driver is pymigjob.pure.Driver
assert pymigjob.phase_to_string is pymigjob.pure.phase_to_string
assert "pymigjob._c._core" not in sys.modules and "_cffi_backend" not in sys.modules
print("ok")
""", impl="pure", no_core=False)
    assert done.returncode == 0, done.stderr


def test_side_by_side_in_one_process():
    """The benchmarks' use: pymigjob is the C core, pymigjob.pure the twin;
    enum, exception and guard classes are shared."""
    import pymigjob

    if pymigjob.Driver is pure.Driver:
        pytest.skip("PYMIGJOB_IMPL=pure: there is no C-backed pymigjob to compare")
    assert pymigjob.Driver.__module__ == "pymigjob._c.driver"
    assert pure.Driver.__module__ == "pymigjob.pure.driver"
    assert pure.Job is pymigjob.Job and pure.NoDomain is pymigjob.NoDomain
    assert pure.JobGuard is pymigjob.JobGuard
    assert pure.DEFAULT_JOB_MASK == pymigjob.DEFAULT_JOB_MASK
    c_dom = pymigjob.Driver().add_domain("vm1")
    p_dom = pure.Driver().add_domain("vm1")
    for dom in (c_dom, p_dom):
        with pytest.raises(pymigjob.OperationInvalid):
            dom.end_job()
        with dom.job(J.MODIFY, api="x"):
            assert dom.owner_api == "x" and dom.refs == 2


# ---- interrupts ----------------------------------------------------------------------

@pytest.mark.parametrize("name", list(BEGINS))
def test_interrupt_at_every_line_of_a_blocked_begin(name):
    """A KeyboardInterrupt at every Python line of a blocked begin of the
    twin: afterwards nothing is queued or referenced for the interrupted call."""
    dom = pure.Driver(job_wait_timeout=LONG_WAIT).add_domain("vm1")
    leaks = interrupted_blocked_begins(
        dom, BEGINS[name], "_wait_locked",
        lambda: (dom.jobs_queued, dom.refs, dom._lock.locked()), (1, 2, False))
    assert dom.refs == 1 and dom.jobs_queued == 0
    assert not leaks, f"((function, line, event), (jobs_queued, refs, locked)): {leaks}"


def test_interrupt_right_after_the_abort_job_is_granted():
    """The abort is applied where the wait sees the grant: an interrupt
    afterwards finds the ABORT job already ended."""
    import threading

    dom = pure.Driver(job_wait_timeout=LONG_WAIT).add_domain("vm1")
    dom.begin_async_job(A.SAVE, api="save")
    holder = Holder(dom, J.QUERY, timeout=LONG_WAIT).start()

    tracer = interrupt_on_return("_apply_abort_locked",
                                 "after the ABORT job was granted and applied")
    threading.Timer(0.2, holder.release).start()
    assert traced(tracer, lambda: dom.abort_job(timeout=LONG_WAIT)), "not interrupted"
    holder.worker.join_ok()
    assert dom.abort_requested
    assert (dom.active_job, dom.jobs_queued, dom.refs) == (J.NONE, 1, 2)
    assert dom.end_async_job() == 1


# ---- interrupts of a coroutine's begin ------------------------------------------------

#: the twin's frames of a coroutine's begin
ASYNC_BEGIN_FRAMES = {"begin_job_async", "begin", "_enqueue_locked", "_settle_locked",
                      "_abandon_locked", "_abandon_soon", "register", "unregister",
                      "_hook_close", "_unhook", "_dispatch", "_wake_locked", "_lock_error",
                      "api", "name", "name_bytes", "_timeout", "timeout", "_kind", "kind_type",
                      "is_kind", "_kind_range", "__init__"}


def test_interrupt_at_every_line_of_a_contended_coroutine_begin():
    """KeyboardInterrupt at every line of the twin's contended
    begin_job_async, up to its suspension and after the grant resumes it
    (loops driven without asyncio.run).  Once the loop is closed nothing is
    queued or referenced; the job is held only when the interrupt came after
    the coroutine took it (as with a blocking begin interrupted just after it
    returned)."""
    import inspect

    from pymigjob.pure import aio as pure_aio
    from pymigjob.pure import domain as pure_domain

    def line_of(fn, text):
        source, first = inspect.getsourcelines(fn)
        return first + next(i for i, line in enumerate(source) if text in line)

    taken_line = line_of(pure_aio.begin, "w.state = _GONE")
    awaited_line = line_of(pure_domain.Domain.begin_job_async, "await _aio.begin")
    dom = pure.Driver(job_wait_timeout=LONG_WAIT).add_domain("vm1")
    leaks, held_after, seen = interrupted_coroutine_begins(
        dom, ASYNC_BEGIN_FRAMES, lambda _: (dom.jobs_queued, dom.refs, dom._lock.locked()),
        (0, 1, False))
    assert not leaks, leaks
    for fn, line, _ in held_after:  # all after the coroutine took the job
        assert ((fn == "begin" and line >= taken_line)
                or (fn == "begin_job_async" and line > awaited_line)
                or fn in ("unregister", "_unhook")), (fn, line, held_after)
    assert len(seen) > 20
