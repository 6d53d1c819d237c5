"""pymigjob: libvirt's QEMU-driver job and migration-phase locking, with a C
core.  The public names of api.md live here."""

from .domain import Domain, JobInfo
from .driver import Driver
from .enums import (
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
from .errors import (
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
from .guards import JobGuard, MigrationGuard, NestedJobGuard
from .status import JobStatus

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_JOB_MASK", "AsyncJob", "Domain", "Driver", "Error", "ErrorCode",
    "InternalError", "InvalidArgument", "Job", "JobGuard", "JobInfo", "JobStatus", "JobTimeout",
    "JobType", "MigrationGuard", "NestedJobGuard", "NoDomain", "NoMemory",
    "OperationAborted", "OperationFailed", "OperationInvalid", "Phase", "QueueFull",
    "SystemFailure", "job_mask", "phase_from_string", "phase_to_string",
]
