"""The C-backed implementation: Domain and Driver over the C core
(pymigjob._c._core, built by build_ffi.py from csrc/).  This package is the
only place that touches cffi; pymigjob/__init__.py chooses it or the pure
twin (pymigjob.pure), its sibling, which shares nothing with it at import."""

from .domain import Domain
from .driver import Driver

#: what this backend has (pymigjob.backend_features when it is the one chosen):
#: "asyncio" -- the *_async begins wait without a thread;
#: "c_core" -- the job state lives in C (GIL released while waiting; the
#: tests marked c_core look inside it); "eventfd_notifier" -- asyncio waiters
#: are woken through one eventfd per loop (Linux)
FEATURES = frozenset({"asyncio", "c_core", "eventfd_notifier"})

__all__ = ["FEATURES", "Domain", "Driver"]
