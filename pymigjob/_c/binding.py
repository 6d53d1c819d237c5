"""The compiled core (pymigjob._c._core) and its conventions: where ``ffi``
is used at all (C strings, the structs and cells the core writes into, the
destructor of a handle's pin) and where a C failure becomes an exception.

The other modules of this package call ``lib``'s functions directly, each
the first statement of its ``try`` where the call is a begin (see
``abandon``): a wrapper per C function would add a Python frame to every
call, the hot begin_job/end_job included.  No module outside ``_c`` touches
``lib`` or ``ffi``.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import _args, _ft
from ..enums import AgentJob, AsyncJob, Job, Phase
from ..errors import error_from

try:
    from ._core import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "pymigjob's C core (pymigjob._c._core) is not built: install the "
        "package with `pip install .` (needs gcc and the Python headers), "
        "or select the pure-Python twin explicitly: PYMIGJOB_IMPL=pure, or "
        "import pymigjob.pure"
    ) from exc

NULL: Any = ffi.NULL
WAITING: int = lib.MJ_WAITING
#: a nowait begin that would have had to wait (nothing changed, no error)
BUSY: int = lib.MJ_BUSY
#: how long one C wait may block before Python gets to run signal handlers
WAIT_SLICE: float = lib.MJ_WAIT_SLICE


_ERROR_MAX: int = lib.MJ_ERROR_MAX
#: the slot a begin left something in: the sync one (nested jobs too), the
#: async one, the agent one (mj_slot)
SYNC_SLOT, ASYNC_SLOT, AGENT_SLOT = lib.MJ_SLOT_SYNC, lib.MJ_SLOT_ASYNC, lib.MJ_SLOT_AGENT
_take_error = lib.mj_error_take
#: give back what this thread's newest begin on a domain left in a slot
abandon = lib.mj_begin_abandon


def take_error() -> tuple[int, str]:
    """Pop the calling thread's newest C error: (code, message).  Errors
    are a per-thread stack, so a library call made in between by a signal
    handler cannot replace the error of the call being reported."""
    buf = ffi.new("char[]", _ERROR_MAX)
    code = _take_error(buf, _ERROR_MAX)
    return code, ffi.string(buf).decode("utf-8", "replace")


def c_string(value: Any) -> str | None:
    """A `const char *` result as str (None for NULL)."""
    if value == NULL:
        return None
    return ffi.string(value).decode("utf-8", "replace")


def c_api(api: object) -> Any:
    """An optional API name for C (NULL for None; see _args.api_bytes)."""
    data = _args.api_bytes(api)
    return NULL if data is None else data


def c_timeout(timeout: object) -> float:
    """None -> the domain's default (-1 for C); otherwise seconds >= 0
    (see _args.timeout)."""
    return -1.0 if timeout is None else _args.timeout(timeout)


#: per argument, the exact types a kind may have without a closer look: a
#: plain int or the argument's own enum.  The rest are checked
#: (_args.kind_type): cffi would also take anything with __int__
#: (Decimal('4.9') as 4), and a member of another enum compares equal to this
#: one's of the same value (AsyncJob.MIGRATION_OUT == Job.QUERY), so it is
#: refused, not mixed up.
JOB_OK = frozenset({int, Job})
ASYNC_JOB_OK = frozenset({int, AsyncJob})
PHASE_OK = frozenset({int, Phase})
AGENT_JOB_OK = frozenset({int, AgentJob})
#: the set for each kind's enum (the coroutine begins name the enum)
KIND_OK: dict[type, frozenset[type]] = {Job: JOB_OK, AsyncJob: ASYNC_JOB_OK, Phase: PHASE_OK,
                                        AgentJob: AGENT_JOB_OK}

#: c_args' default: the call takes no mask
NO_MASK: Any = object()


def c_args(kind: object, ok: frozenset[type], cls: type, what: str, api: object,
           timeout: object, mask: object = NO_MASK) -> tuple[Any, float, int | None]:
    """A begin's arguments for C, each checked in the public order (the
    kind's type, api, timeout, the mask if the call takes one, the kind's
    C int range): (api, timeout, mask) as C takes them.  Every argument cffi
    could refuse is refused here, before the begin's ``try`` (see abandon)."""
    if kind.__class__ not in ok:
        _args.kind_type(kind, cls, what)
    api_arg = c_api(api)
    timeout_arg = -1.0 if timeout is None else _args.timeout(timeout)
    checked_mask = None if mask is NO_MASK else _args.optional_mask(mask)
    _args.c_int_kind(kind, cls, what)  # type: ignore[arg-type]
    return api_arg, timeout_arg, checked_mask


def last_error() -> Exception:
    """The calling thread's newest C error as a pymigjob exception, taken
    off its stack.  Call it once for each failed C call."""
    return error_from(*take_error())


def wait_pending() -> None:
    """Finish a begin that returned WAITING: wait in slices so that
    signal handlers (Ctrl-C) run in between; the deadline was fixed by the
    begin.  The caller's exception path gives back whatever the begin
    holds, including a grant whose return an exception overtook (see
    `abandon`)."""
    while True:
        rc = lib.mj_pending_wait(WAIT_SLICE)
        if rc != WAITING:
            break
    if rc < 0:
        raise last_error()


def settle(rc: int) -> None:
    """After a begin returned non-zero: raise its error, or wait out its
    place in the queue."""
    if rc < 0:
        raise last_error()
    wait_pending()


def run_begin(begin: Callable[..., int], p: Any, slot: int, *args: Any) -> bool:
    """A blocking C begin on `p`, to its end: held (True), or its error
    raised.  Whatever escapes gives back what the begin left in `slot` (see
    `abandon`).  (Domain.begin_job inlines this: the hot path.)"""
    try:
        rc = begin(p, *args)
        if rc:
            settle(rc)
    except BaseException:
        abandon(p, slot)
        raise
    return True


def run_nowait(begin: Callable[..., int], p: Any, slot: int, *args: Any) -> bool:
    """A nowait C begin on `p`: True held, False busy (nothing changed, no
    error), or its error raised; interrupted, as run_begin."""
    try:
        rc = begin(p, *args)
        if rc < 0:
            raise last_error()
    except BaseException:
        abandon(p, slot)
        raise
    return rc == 0


# ---- the structs and cells the core writes into ----------------------------------


def new_domain(name: bytes, timeout: float, max_queued: int, strict: bool,
               uuid: str | None = None) -> Any:
    """mj_domain_new (and mj_domain_set_uuid), as a pointer whose destructor
    drops the handle's pin: a C-level destructor, which no signal can
    interrupt halfway (a Python __del__ could be, leaking the pin)."""
    p = lib.mj_domain_new(name, timeout, max_queued, strict)
    if p == NULL:
        raise last_error()
    p = ffi.gc(p, lib.mj_domain_unpin)
    if uuid is not None and lib.mj_domain_set_uuid(p, uuid.encode("ascii")) < 0:
        raise last_error()
    return p


def job_fields(p: Any) -> tuple[int, int, int, str | None]:
    """(active job, async job, phase, owner API of the async job if any,
    else of the sync job), read at one instant (mj_domain_snapshot)."""
    snap = ffi.new("mj_job_snapshot *")
    if lib.mj_domain_snapshot(p, snap) < 0:
        raise last_error()
    if snap.async_job:
        owner = snap.async_owner_api if snap.has_async_owner_api else None
    else:
        owner = snap.owner_api if snap.has_owner_api else None
    return (snap.active_job, snap.async_job, snap.phase,
            None if owner is None else ffi.string(owner).decode())


def waiter_cell(waiter: Any = NULL) -> Any:
    """A caller-owned ``mj_waiter **`` cell: mj_pending_detach,
    mj_waiter_poll and mj_waiter_cancel write it before they return."""
    return ffi.new("mj_waiter **", waiter)


#: the benchmarks' floor: a C function that does nothing (csrc/testing.h)
noop = lib.mj_noop



def job_stats(p: Any, flags: int) -> tuple[Any, ...] | None:
    """mj_domain_job_stats: the record's fields (state, operation, started,
    stopped, elapsed, delta or None, error or None), or None."""
    out = ffi.new("mj_job_data *")
    rc = lib.mj_domain_job_stats(p, flags, out)
    if rc < 0:
        raise last_error()
    if rc == 0:
        return None
    return (out.state, out.operation, out.started, out.stopped, out.elapsed,
            out.delta if out.has_delta else None,
            ffi.string(out.error).decode("utf-8", "replace") if out.has_error else None)


# free-threaded builds: deferred reference counts for this module's shared
# objects, the cffi functions and tables (see _ft; nothing elsewhere)
_ft.defer_globals(globals())
