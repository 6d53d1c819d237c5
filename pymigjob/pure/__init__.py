"""pymigjob.pure: the pure-Python twin of pymigjob.

The same public API (api.md, docs/DECISIONS.md) implemented with ``threading``
only: a Lock per domain, a Condition per waiting begin, one
``time.monotonic`` deadline per begin.  It serves where the C extension cannot
be built (``PYMIGJOB_IMPL=pure``), as the model the differential tests compare
the C core with, and as the baseline of the benchmarks.

``import pymigjob.pure`` works next to the C-backed ``pymigjob`` in one
process; it is a sibling of pymigjob._c and imports nothing of it.  The
enums, exceptions, guards, JobInfo and JobStatus are pymigjob's own (shared);
Domain and Driver are this package's.
"""

from .. import _public
from .._public import *  # noqa: F401,F403 - the shared public names (_public.__all__)
from .domain import Domain
from .driver import Driver

#: this package is the pure-Python implementation
IMPLEMENTATION = "pure"
#: what this backend has (pymigjob.backend_features when it is the one chosen;
#: see pymigjob._c.FEATURES): the *_async begins wait without a thread
FEATURES = frozenset({"asyncio"})

__all__ = ["Domain", "Driver", "FEATURES", "IMPLEMENTATION", *_public.__all__]
