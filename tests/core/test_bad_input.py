"""Bad input to the job calls: the errors, and no state change (api.md
items 4 and 12)."""

from __future__ import annotations

import math
import time

import pytest

import pymigjob as mj
from _mjhelpers import fresh, snapshot

J = mj.Job
A = mj.AsyncJob
SYNC_JOBS = [J.QUERY, J.DESTROY, J.SUSPEND, J.MODIFY, J.ABORT, J.MIGRATION_OP]
ASYNC_KINDS = [A.MIGRATION_OUT, A.MIGRATION_IN, A.SAVE, A.DUMP]



# ---- bad input (items 4 and 12): errors and no state change ------------------------------

INVALID_JOB = "Attempt to start invalid job"

BAD_CALLS = [
    # sync kinds that are not sync jobs
    ("begin_job NONE", lambda d: d.begin_job(J.NONE), mj.InternalError),
    ("begin_job 0", lambda d: d.begin_job(0), mj.InternalError),
    ("begin_job ASYNC", lambda d: d.begin_job(J.ASYNC), mj.InternalError),
    ("begin_job ASYNC_NESTED", lambda d: d.begin_job(J.ASYNC_NESTED), mj.InternalError),
    ("begin_async_job NONE", lambda d: d.begin_async_job(A.NONE), mj.InternalError),
    ("migration_job_start NONE", lambda d: d.migration_job_start(A.NONE), mj.InternalError),
    # out of range
    *[(f"begin_job {v}", (lambda v: lambda d: d.begin_job(v))(v), ValueError)
      for v in (10, 99, -1, 2**64, -(2**64), 2**31)],
    *[(f"begin_async_job {v}", (lambda v: lambda d: d.begin_async_job(v))(v), ValueError)
      for v in (8, 99, -1, 2**64)],
    *[(f"begin_nested_job {v}", (lambda v: lambda d: d.begin_nested_job(v))(v), ValueError)
      for v in (8, 99, -1, 2**64)],
    *[(f"migration_job_start {v}", (lambda v: lambda d: d.migration_job_start(v))(v),
       ValueError) for v in (8, 99, -1, 2**64)],
    *[(f"set_phase {v}", (lambda v: lambda d: d.migration_job_set_phase(v))(v), ValueError)
      for v in (16, 99, -1, 2**64)],
    *[(f"start_phase {v}", (lambda v: lambda d: d.migration_job_start_phase(v))(v),
       ValueError) for v in (16, 99, -1, 2**64)],
    *[(f"check_migration_job {v}", (lambda v: lambda d: d.check_migration_job(v))(v),
       ValueError) for v in (8, 99, -1, 2**64)],
    *[(f"set_async_job_mask {v}", (lambda v: lambda d: d.set_async_job_mask(v))(v),
       ValueError) for v in (-1, 2**64, 2**65)],
    ("migration_job_start mask -1",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, mask=-1), ValueError),
    ("migration_job_start mask 2**64",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, mask=2**64), ValueError),
    # wrong types
    *[(f"begin_job {v!r}", (lambda v: lambda d: d.begin_job(v))(v), TypeError)
      for v in ("query", "1", 1.0, None, [1], b"\x01")],
    *[(f"begin_async_job {v!r}", (lambda v: lambda d: d.begin_async_job(v))(v), TypeError)
      for v in ("save", 3.0, None)],
    *[(f"begin_nested_job {v!r}", (lambda v: lambda d: d.begin_nested_job(v))(v), TypeError)
      for v in ("migration out", 1.0, None)],
    *[(f"migration_job_start {v!r}", (lambda v: lambda d: d.migration_job_start(v))(v),
       TypeError) for v in ("migration out", None)],
    ("migration_job_start mask str",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, mask="0x13"), TypeError),
    ("migration_job_start mask float",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, mask=1.5), TypeError),
    *[(f"set_phase {v!r}", (lambda v: lambda d: d.migration_job_set_phase(v))(v), TypeError)
      for v in ("perform3", None, 3.0)],
    *[(f"start_phase {v!r}", (lambda v: lambda d: d.migration_job_start_phase(v))(v),
       TypeError) for v in ("perform3", None, 3.0)],
    *[(f"set_async_job_mask {v!r}", (lambda v: lambda d: d.set_async_job_mask(v))(v),
       TypeError) for v in ("0x13", None, 1.0)],
    *[(f"check_migration_job {v!r}", (lambda v: lambda d: d.check_migration_job(v))(v),
       TypeError) for v in ("migration out", None)],
    # timeouts (item 12)
    *[(f"begin_job timeout={v!r}", (lambda v: lambda d: d.begin_job(J.QUERY, timeout=v))(v),
       ValueError) for v in (-1, -0.001, -math.inf, math.nan)],
    *[(f"begin_job timeout={v!r}", (lambda v: lambda d: d.begin_job(J.QUERY, timeout=v))(v),
       TypeError) for v in ("1", b"1", [1.0])],
    ("begin_async_job timeout=-1", lambda d: d.begin_async_job(A.SAVE, timeout=-1), ValueError),
    ("begin_async_job timeout='1'", lambda d: d.begin_async_job(A.SAVE, timeout="1"),
     TypeError),
    ("begin_nested_job timeout=-1",
     lambda d: d.begin_nested_job(A.MIGRATION_OUT, timeout=-1), ValueError),
    ("migration_job_start timeout=-1",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, timeout=-1), ValueError),
    ("migration_job_start timeout='x'",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, timeout="x"), TypeError),
    ("abort_job timeout=-1", lambda d: d.abort_job(timeout=-1), ValueError),
    ("abort_job timeout='x'", lambda d: d.abort_job(timeout="x"), TypeError),
    # api names
    ("begin_job api=123", lambda d: d.begin_job(J.QUERY, api=123), TypeError),
    ("begin_async_job api=1.0", lambda d: d.begin_async_job(A.SAVE, api=1.0), TypeError),
    ("migration_job_start api=[]",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, api=[]), TypeError),
    ("begin_job api too long", lambda d: d.begin_job(J.QUERY, api="x" * 5000), ValueError),
    ("abort_job api=5", lambda d: d.abort_job(api=5), TypeError),
]


@pytest.fixture(params=["idle", "sync_held", "async_active", "parked"])
def state(request, drv):
    """A domain in one of several states; bad input must not change any."""
    dom = drv.add_domain("vm1")
    if request.param == "sync_held":
        dom.begin_job(J.QUERY, api="stats")
    elif request.param == "async_active":
        dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
        dom.migration_job_set_phase(mj.Phase.BEGIN3)
    elif request.param == "parked":
        dom.migration_job_start(A.MIGRATION_IN, api="prepare3")
        dom.migration_job_set_phase(mj.Phase.PREPARE)
        dom.migration_job_continue()
    return dom


@pytest.mark.parametrize("label, call, exc", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_changes_nothing(state, label, call, exc):
    before = snapshot(state)
    t0 = time.monotonic()
    with pytest.raises((exc, ValueError) if exc is mj.InternalError else exc) as ei:
        call(state)
    # the driver's default wait is 5 s: a call that waited for the lock first
    # would take that long (and time out instead)
    assert time.monotonic() - t0 < 4.0, "validation must not wait for the lock"
    if isinstance(ei.value, mj.InternalError):
        assert ei.value.message == INVALID_JOB
    assert str(ei.value)  # a clear message
    assert snapshot(state) == before


def test_bad_input_leaves_domain_usable(dom):
    for _label, call, exc in BAD_CALLS:
        with pytest.raises(Exception):
            call(dom)
    fresh(dom)
    dom.begin_job(J.MODIFY, timeout=1.0)
    assert dom.end_job() == 1
    dom.migration_job_start(A.MIGRATION_OUT, timeout=1.0)
    assert dom.mask == 0x77
    assert dom.migration_job_finish() == 1


@pytest.mark.parametrize("kwargs, exc", [
    ({"job_wait_timeout": -1}, ValueError),
    ({"job_wait_timeout": math.nan}, ValueError),
    ({"job_wait_timeout": "30"}, TypeError),
    ({"max_queued": -1}, ValueError),
    ({"max_queued": 2**64}, ValueError),
    ({"max_queued": 1.5}, TypeError),
    ({"max_queued": "1"}, TypeError),
])
def test_driver_bad_arguments(kwargs, exc):
    with pytest.raises(exc):
        mj.Driver(**kwargs)


@pytest.mark.parametrize("name, exc", [
    (123, TypeError), (None, TypeError), (b"vm1", TypeError), ("x" * 5000, ValueError),
])
def test_add_domain_bad_names(drv, name, exc):
    with pytest.raises(exc):
        drv.add_domain(name)
    assert drv.domains() == []


def test_domains_lists_names(drv):
    assert drv.domains() == []
    drv.add_domain("a")
    drv.add_domain("b")
    assert sorted(drv.domains()) == ["a", "b"]
    drv.remove_domain("a")
    assert drv.domains() == ["b"]


def test_api_names_every_time(dom):
    """API names are cached once checked: a refused name is refused on every
    call, and the owner API is the one passed, also after more distinct names
    than any cache holds."""
    for _ in range(3):
        with pytest.raises(ValueError, match="api must not contain NUL"):
            dom.begin_job(J.MODIFY, api="set\0Memory")
        with pytest.raises(ValueError, match="api is longer than"):
            dom.begin_job(J.MODIFY, api="x" * 10_000)
        with pytest.raises(TypeError, match="api must be a str, not bytes"):
            dom.begin_job(J.MODIFY, api=b"setMemory")
    assert dom.active_job == J.NONE and dom.refs == 1

    class Name(str):
        pass

    for i in range(3000):
        name = f"api{i % 1500}" if i % 3 else Name(f"sub{i}")
        dom.begin_job(J.MODIFY, api=name)
        assert dom.owner_api == name
        dom.end_job()
