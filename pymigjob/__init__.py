"""pymigjob: libvirt's QEMU-driver job and migration-phase locking, with a C
core.  The public names of api.md live here.

``PYMIGJOB_IMPL=pure`` exposes the pure-Python twin (pymigjob.pure) under the
same names instead; ``import pymigjob.pure`` gives the twin in any mode.  With
the C core not built and PYMIGJOB_IMPL unset, ``import pymigjob`` raises
ImportError (no silent fallback).  See _backend.py.
"""

from . import _backend
from ._version import __version__

__all__ = [
    "DEFAULT_JOB_MASK", "AsyncJob", "Domain", "Driver", "Error", "ErrorCode",
    "InternalError", "InvalidArgument", "Job", "JobGuard", "JobInfo", "JobStatus", "JobTimeout",
    "JobType", "MigrationGuard", "NestedJobGuard", "NoDomain", "NoMemory",
    "OperationAborted", "OperationFailed", "OperationInvalid", "Phase", "QueueFull",
    "SystemFailure", "job_mask", "phase_from_string", "phase_to_string",
]

if _backend.IMPL == "c" and _backend.c_core_error() is not None and _backend.importing_pure():
    # `import pymigjob.pure` without the C core: this package is only the
    # twin's parent; its own names stay unavailable, with the reason

    def __getattr__(name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(f"module 'pymigjob' has no attribute {name!r}")
        raise ImportError(f"pymigjob.{name} is not available: {_backend.c_core_error()} "
                          "(only pymigjob.pure was imported)", name="pymigjob")
else:
    # the backend first: in pure mode pymigjob.pure must be importing before
    # pymigjob.enums asks it for its tables
    if _backend.IMPL == "pure":
        from .pure import (
            DEFAULT_JOB_MASK,
            Domain,
            Driver,
            JobInfo,
            job_mask,
            phase_from_string,
            phase_to_string,
        )
    else:
        from .domain import Domain, JobInfo
        from .driver import Driver
        from .enums import DEFAULT_JOB_MASK, job_mask, phase_from_string, phase_to_string
    from .enums import AsyncJob, ErrorCode, Job, JobType, Phase
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
