"""pymigjob.pure: the pure-Python twin of pymigjob.

The same public API (api.md, docs/DECISIONS.md) implemented with ``threading``
only: a Lock per domain, a Condition per waiting begin, one
``time.monotonic`` deadline per begin.  It serves where the C extension cannot
be built (``PYMIGJOB_IMPL=pure``), as the model the differential tests compare
the C core with, and as the baseline of the benchmarks.

``import pymigjob.pure`` works next to the C-backed ``pymigjob`` in one
process.  The enum, exception and guard classes are pymigjob's own (shared);
Domain, Driver, JobInfo and the enum helper functions are this package's.
"""

from ..enums import (
    DEFAULT_JOB_MASK,
    AsyncJob,
    ErrorCode,
    Job,
    JobType,
    Phase,
    job_mask,
    phase_from_string,
    phase_to_string,
)
from ..errors import (
    Error,
    InternalError,
    InvalidArgument,
    JobTimeout,
    NoDomain,
    NoMemory,
    OperationAborted,
    OperationFailed,
    OperationInvalid,
    QueueFull,
    SystemFailure,
)
from ..guards import JobGuard, MigrationGuard, NestedJobGuard
from ..status import JobStatus
from .._base import JobInfo
from .domain import Domain, JobAsyncGuard
from .driver import Driver

#: this package is the pure-Python implementation
IMPLEMENTATION = "pure"
#: what this backend has (pymigjob.backend_features when it is the one chosen;
#: see pymigjob._c.FEATURES): the *_async begins wait without a thread
FEATURES = frozenset({"asyncio"})

__all__ = [
    "DEFAULT_JOB_MASK", "FEATURES", "AsyncJob", "Domain", "Driver", "Error", "ErrorCode",
    "InternalError", "InvalidArgument", "Job", "JobAsyncGuard", "JobGuard", "JobInfo",
    "JobStatus", "JobTimeout", "JobType", "MigrationGuard", "NestedJobGuard", "NoDomain",
    "NoMemory", "OperationAborted", "OperationFailed", "OperationInvalid", "Phase",
    "QueueFull", "SystemFailure", "job_mask", "phase_from_string", "phase_to_string",
]
