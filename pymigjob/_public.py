"""The public names both backends share -- every name of api.md but Domain
and Driver -- listed once: ``pymigjob`` and ``pymigjob.pure`` export them
from here (``from ._public import *``), next to their backend's Domain and
Driver."""

from ._base import JobInfo
from .enums import (
    DEFAULT_JOB_MASK,
    AgentJob,
    AsyncJob,
    ErrorCode,
    Job,
    JobOperation,
    JobState,
    JobType,
    Phase,
    job_mask,
    phase_from_string,
    phase_to_string,
)
from .errors import (
    ArgumentUnsupported,
    Error,
    InternalError,
    InvalidArgument,
    JobTimeout,
    NoDomain,
    NoMemory,
    OperationAborted,
    OperationFailed,
    OperationInvalid,
    OperationUnsupported,
    QueueFull,
    SystemFailure,
    XmlError,
)
from .guards import AgentJobGuard, JobAsyncGuard, JobGuard, MigrationGuard, NestedJobGuard
from .jobdata import JobData
from .persist.status import JobStatus

__all__ = [
    "DEFAULT_JOB_MASK", "AgentJob", "AgentJobGuard", "ArgumentUnsupported", "AsyncJob", "Error", "ErrorCode", "InternalError", "InvalidArgument",
    "Job", "JobAsyncGuard", "JobData", "JobOperation", "JobState", "JobGuard", "JobInfo", "JobStatus", "JobTimeout", "JobType",
    "MigrationGuard", "NestedJobGuard", "NoDomain", "NoMemory", "OperationAborted",
    "OperationFailed", "OperationInvalid", "OperationUnsupported", "Phase", "QueueFull",
    "SystemFailure", "XmlError", "job_mask",
    "phase_from_string", "phase_to_string",
]
