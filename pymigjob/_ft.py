"""Free-threaded CPython (3.14t): keep threads off each other's cache lines.

Without the GIL, an object that every thread touches on a hot path is a
scaling problem by itself: each reference taken or dropped is an atomic
add on the object's shared reference count, and two cores doing that to
one cache line take turns owning it (measured with benchmarks/scaling.py,
in rounds where two threads on their own domains ran side by side: each
begin+end pair cost 1.7x the CPU time of one thread's before this module
was used, 1.05x after).  CPython 3.14 avoids this for the objects it marks
*immortal* (None, True, small ints from -5 to 256, interned strings; not
the other constants of code loaded from a .pyc, a float literal included)
or *deferred* (functions, classes, modules): the interpreter's own
references to those cost no count change.

``defer_globals(globals())`` extends the latter to a module's other shared
objects -- the cffi functions, the lookup dicts, tuples and frozensets, the
enum members -- with ``PyUnstable_Object_EnableDeferredRefcount`` (new in
3.14).  A deferred object is freed only by the garbage collector, which is
no cost for module globals, which live as long as the module.  Objects of
types the collector does not track (floats, large ints, bytes, cffi's
NULL) cannot be deferred: hot paths avoid those, with small-int literals
(immortal) or per-thread objects instead.

What the hot paths do with it (pymigjob/_c/domain.py, begin_job): a Job
member or a plain int goes to its int (``_JOB_INT``, an immortal small
int), and that int indexes ``_QUICK_JOBS``, a tuple of the one-argument
begins: a tuple item is loaded without a count, a dict lookup's result is
counted whatever it is.  With an API name, the "no timeout" goes as the int
-1 and, on free-threaded builds, the first wait slice as the int 0: the C
begin returns WAITING at once instead of after one slice, and
binding.settle waits in slices as before; the semantics are the same.  The
API names' encodings are cached per thread (pymigjob/_args.py), so that
each bytes object handed to C is its thread's own.  Each handle's ffi.gc
pointer is deferred (Domain.__init__): every call loads it, and two
handles' pointers that the allocator put side by side share a cache line.
The cost: a dropped handle's pointer, and its pin on the C domain's
memory, goes at the next run of the cyclic collector instead of at once
(refs, and so the domain's life, are not affected).

On GIL builds (and before 3.14) everything here does nothing.  The
reference counts are an optimisation only: nothing here is needed for
correctness.
"""

from __future__ import annotations

import sys
import sysconfig
from typing import Any, Callable, Iterable, Optional

#: this interpreter is a free-threaded build (whether or not the GIL was
#: turned back on at run time)
FREE_THREADED: bool = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def _enabler() -> Optional[Callable[[Any], int]]:
    if not FREE_THREADED or sys.version_info < (3, 14):
        return None
    try:
        import ctypes

        fn = ctypes.pythonapi.PyUnstable_Object_EnableDeferredRefcount
    except (ImportError, AttributeError):  # pragma: no cover - no ctypes / renamed
        return None
    fn.argtypes = [ctypes.py_object]
    fn.restype = ctypes.c_int
    return fn


_enable = _enabler()


def defer(objects: Iterable[Any]) -> int:
    """Deferred reference counting for each object that can have it (and
    has not yet); returns how many were switched.  No-op without support."""
    if _enable is None:
        return 0
    return sum(_enable(obj) for obj in objects)


def _shared(value: Any, depth: int = 0) -> Iterable[Any]:
    """value, and the items of a tuple, frozenset or dict value (one level):
    a lookup table's entries are as shared as the table."""
    yield value
    if depth == 0:
        if isinstance(value, (tuple, frozenset)):
            for item in value:
                yield from _shared(item, 1)
        elif type(value) is dict:
            for key, item in value.items():
                yield from _shared(key, 1)
                yield from _shared(item, 1)


def defer_globals(namespace: dict[str, Any]) -> int:
    """defer() a module's globals (and their tables' entries) except
    modules' own namespaces; call it at the end of the module."""
    if _enable is None:
        return 0
    return defer(obj for name, value in list(namespace.items())
                 if not (name.startswith("__") and name.endswith("__"))
                 for obj in _shared(value))
