"""The enums of api.md, with libvirt's string for each member, and the
enum helpers (qemuDomainAsyncJobPhase{To,From}String, JOB_MASK).  Values and
labels are _constants' (plain data, held to the C core's tables by a test);
both backends share these classes and functions."""

from __future__ import annotations

from enum import IntEnum
from typing import TypeVar

from . import _args, _ft
from . import _constants as K

_E = TypeVar("_E", bound="_Labelled")


class _Labelled(IntEnum):
    """An enum with libvirt's string for each member."""

    @property
    def label(self) -> str:
        return _LABELS[type(self)][self._value_]

    @classmethod
    def from_label(cls: type[_E], text: str) -> _E:
        if not isinstance(text, str):
            raise TypeError(f"label must be a str, not {type(text).__name__}")
        member = _BY_LABEL[cls].get(text)
        if member is None:
            raise ValueError(f"unknown {cls.__name__} label {text!r}")
        return member  # type: ignore[return-value]


class Job(_Labelled):
    """Sync job kinds (libvirt 11 numbering)."""

    NONE = K.MJ_JOB_NONE
    QUERY = K.MJ_JOB_QUERY
    DESTROY = K.MJ_JOB_DESTROY
    SUSPEND = K.MJ_JOB_SUSPEND
    MODIFY = K.MJ_JOB_MODIFY
    ABORT = K.MJ_JOB_ABORT
    MIGRATION_OP = K.MJ_JOB_MIGRATION_OP
    MODIFY_MIGRATION_SAFE = K.MJ_JOB_MODIFY_MIGRATION_SAFE
    ASYNC = K.MJ_JOB_ASYNC
    ASYNC_NESTED = K.MJ_JOB_ASYNC_NESTED


class AsyncJob(_Labelled):
    NONE = K.MJ_ASYNC_JOB_NONE
    MIGRATION_OUT = K.MJ_ASYNC_JOB_MIGRATION_OUT
    MIGRATION_IN = K.MJ_ASYNC_JOB_MIGRATION_IN
    SAVE = K.MJ_ASYNC_JOB_SAVE
    DUMP = K.MJ_ASYNC_JOB_DUMP
    SNAPSHOT = K.MJ_ASYNC_JOB_SNAPSHOT
    START = K.MJ_ASYNC_JOB_START
    BACKUP = K.MJ_ASYNC_JOB_BACKUP


class AgentJob(_Labelled):
    """Agent job kinds: the third slot, for guest agent calls (libvirt 11)."""

    NONE = K.MJ_AGENT_JOB_NONE
    QUERY = K.MJ_AGENT_JOB_QUERY
    MODIFY = K.MJ_AGENT_JOB_MODIFY


class Phase(_Labelled):
    """Migration phases: the seed's ten, then libvirt 11's resume range."""

    NONE = K.MJ_PHASE_NONE
    PERFORM2 = K.MJ_PHASE_PERFORM2
    BEGIN3 = K.MJ_PHASE_BEGIN3
    PERFORM3 = K.MJ_PHASE_PERFORM3
    PERFORM3_DONE = K.MJ_PHASE_PERFORM3_DONE
    CONFIRM3_CANCELLED = K.MJ_PHASE_CONFIRM3_CANCELLED
    CONFIRM3 = K.MJ_PHASE_CONFIRM3
    PREPARE = K.MJ_PHASE_PREPARE
    FINISH2 = K.MJ_PHASE_FINISH2
    FINISH3 = K.MJ_PHASE_FINISH3
    POSTCOPY_FAILED = K.MJ_PHASE_POSTCOPY_FAILED
    BEGIN_RESUME = K.MJ_PHASE_BEGIN_RESUME
    PERFORM_RESUME = K.MJ_PHASE_PERFORM_RESUME
    CONFIRM_RESUME = K.MJ_PHASE_CONFIRM_RESUME
    PREPARE_RESUME = K.MJ_PHASE_PREPARE_RESUME
    FINISH_RESUME = K.MJ_PHASE_FINISH_RESUME


class JobType(_Labelled):
    """virDomainJobType, as reported by job info."""

    NONE = K.MJ_JOB_INFO_NONE
    BOUNDED = K.MJ_JOB_INFO_BOUNDED
    UNBOUNDED = K.MJ_JOB_INFO_UNBOUNDED
    COMPLETED = K.MJ_JOB_INFO_COMPLETED
    FAILED = K.MJ_JOB_INFO_FAILED
    CANCELLED = K.MJ_JOB_INFO_CANCELLED


class JobState(IntEnum):
    """libvirt's virDomainJobStatus: the async job's progress (job data)."""

    NONE = K.MJ_JOB_STATE_NONE
    ACTIVE = K.MJ_JOB_STATE_ACTIVE
    MIGRATING = K.MJ_JOB_STATE_MIGRATING
    HYPERVISOR_COMPLETED = K.MJ_JOB_STATE_HYPERVISOR_COMPLETED
    PAUSED = K.MJ_JOB_STATE_PAUSED
    POSTCOPY = K.MJ_JOB_STATE_POSTCOPY
    POSTCOPY_PAUSED = K.MJ_JOB_STATE_POSTCOPY_PAUSED
    POSTCOPY_RECOVER = K.MJ_JOB_STATE_POSTCOPY_RECOVER
    COMPLETED = K.MJ_JOB_STATE_COMPLETED
    FAILED = K.MJ_JOB_STATE_FAILED
    CANCELED = K.MJ_JOB_STATE_CANCELED


class JobOperation(IntEnum):
    """libvirt's virDomainJobOperation."""

    UNKNOWN = K.MJ_JOB_OPERATION_UNKNOWN
    START = K.MJ_JOB_OPERATION_START
    SAVE = K.MJ_JOB_OPERATION_SAVE
    RESTORE = K.MJ_JOB_OPERATION_RESTORE
    MIGRATION_IN = K.MJ_JOB_OPERATION_MIGRATION_IN
    MIGRATION_OUT = K.MJ_JOB_OPERATION_MIGRATION_OUT
    SNAPSHOT = K.MJ_JOB_OPERATION_SNAPSHOT
    SNAPSHOT_REVERT = K.MJ_JOB_OPERATION_SNAPSHOT_REVERT
    DUMP = K.MJ_JOB_OPERATION_DUMP
    BACKUP = K.MJ_JOB_OPERATION_BACKUP
    SNAPSHOT_DELETE = K.MJ_JOB_OPERATION_SNAPSHOT_DELETE


class ErrorCode(IntEnum):
    """libvirt's virErrorNumber values that pymigjob reports."""

    INTERNAL_ERROR = K.MJ_ERR_INTERNAL_ERROR
    NO_MEMORY = K.MJ_ERR_NO_MEMORY
    INVALID_ARG = K.MJ_ERR_INVALID_ARG
    OPERATION_FAILED = K.MJ_ERR_OPERATION_FAILED
    XML_ERROR = K.MJ_ERR_XML_ERROR
    SYSTEM_ERROR = K.MJ_ERR_SYSTEM_ERROR
    NO_DOMAIN = K.MJ_ERR_NO_DOMAIN
    OPERATION_INVALID = K.MJ_ERR_OPERATION_INVALID
    OPERATION_TIMEOUT = K.MJ_ERR_OPERATION_TIMEOUT
    ARGUMENT_UNSUPPORTED = K.MJ_ERR_ARGUMENT_UNSUPPORTED
    OPERATION_ABORTED = K.MJ_ERR_OPERATION_ABORTED
    OPERATION_UNSUPPORTED = K.MJ_ERR_OPERATION_UNSUPPORTED

    @property
    def prefix(self) -> str:
        """libvirt's text before the message, e.g. "internal error"."""
        return K.ERROR_PREFIXES[self]


# per class: members of different IntEnums with one value compare equal
_LABELS: dict[type[_Labelled], tuple[str, ...]] = {
    Job: K.JOB_LABELS, AsyncJob: K.ASYNC_JOB_LABELS, Phase: K.PHASE_LABELS,
    JobType: K.JOB_INFO_LABELS, AgentJob: K.AGENT_JOB_LABELS,
}
_BY_LABEL: dict[type[_Labelled], dict[str, _Labelled]] = {}
for _cls, _labels in _LABELS.items():
    # the members and the table must describe the same enum
    if [m.value for m in _cls] != list(range(len(_labels))):
        raise ImportError(f"{_cls.__name__} does not match its labels in _constants")
    # first label wins, as in a linear scan ("none" is Job.NONE, not Job.ASYNC)
    _BY_LABEL[_cls] = {}
    for _member in reversed(_cls):
        _BY_LABEL[_cls][_labels[_member]] = _member
for _alias, _value in K.PHASE_ALIASES.items():
    _BY_LABEL[Phase][_alias] = Phase(_value)
#: phase text -> value, for the migration jobs' phase table
_PHASE_BY_LABEL = {label: int(member) for label, member in _BY_LABEL[Phase].items()}

#: QUERY | DESTROY | ABORT
DEFAULT_JOB_MASK: int = K.MJ_DEFAULT_JOB_MASK


def job_mask(*jobs: int) -> int:
    """libvirt's JOB_MASK for each job, or'ed; JOB_MASK(NONE) is 0."""
    mask = 0
    for job in jobs:
        mask |= K.JOB_BITS[_args.enum_value(Job, job, "job")]
    return mask


def phase_to_string(async_job: int, phase: int) -> str | None:
    """qemuDomainAsyncJobPhaseToString: migration jobs use the phase table
    (None when the phase is out of range); every other async job gives "none"."""
    async_job = _args.enum_value(AsyncJob, async_job, "async_job")
    _args.kind_type(phase, Phase, "phase", "an int")
    if async_job in K.MIGRATION_JOBS:
        return K.PHASE_LABELS[phase] if 0 <= phase < K.MJ_PHASE_LAST else None
    return "none"


def phase_from_string(async_job: int, text: str | None) -> int:
    """qemuDomainAsyncJobPhaseFromString: None -> 0, unknown -> -1;
    non-migration jobs accept only "none"."""
    async_job = _args.enum_value(AsyncJob, async_job, "async_job")
    if text is None:
        return 0
    if not isinstance(text, str):
        raise TypeError(f"text must be a str or None, not {type(text).__name__}")
    if async_job in K.MIGRATION_JOBS:
        return _PHASE_BY_LABEL.get(text, -1)
    return 0 if text == "none" else -1


# free-threaded builds: every member is shared by every thread that names it
# (Job.MODIFY in each worker's loop): deferred reference counts for them and
# this module's tables (see _ft; nothing elsewhere)
_ft.defer(m for cls in (Job, AsyncJob, AgentJob, Phase, JobType, JobState, JobOperation, ErrorCode)
          for m in cls)
_ft.defer_globals(globals())
