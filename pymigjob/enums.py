"""IntEnums whose values and labels come from the C core's tables."""

from __future__ import annotations

from enum import IntEnum
from typing import Callable, TypeVar

from ._binding import NULL, ffi, lib

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
        value = _FROM_STRING[cls](text.encode("utf-8")) if "\0" not in text else -1
        if value < 0:
            raise ValueError(f"unknown {cls.__name__} label {text!r}")
        return cls(value)


class Job(_Labelled):
    """Sync job kinds (libvirt 0.9.4 numbering)."""

    NONE = lib.MJ_JOB_NONE
    QUERY = lib.MJ_JOB_QUERY
    DESTROY = lib.MJ_JOB_DESTROY
    SUSPEND = lib.MJ_JOB_SUSPEND
    MODIFY = lib.MJ_JOB_MODIFY
    ABORT = lib.MJ_JOB_ABORT
    MIGRATION_OP = lib.MJ_JOB_MIGRATION_OP
    ASYNC = lib.MJ_JOB_ASYNC
    ASYNC_NESTED = lib.MJ_JOB_ASYNC_NESTED


class AsyncJob(_Labelled):
    NONE = lib.MJ_ASYNC_JOB_NONE
    MIGRATION_OUT = lib.MJ_ASYNC_JOB_MIGRATION_OUT
    MIGRATION_IN = lib.MJ_ASYNC_JOB_MIGRATION_IN
    SAVE = lib.MJ_ASYNC_JOB_SAVE
    DUMP = lib.MJ_ASYNC_JOB_DUMP


class Phase(_Labelled):
    """Migration phases, the seed's ten."""

    NONE = lib.MJ_PHASE_NONE
    PERFORM2 = lib.MJ_PHASE_PERFORM2
    BEGIN3 = lib.MJ_PHASE_BEGIN3
    PERFORM3 = lib.MJ_PHASE_PERFORM3
    PERFORM3_DONE = lib.MJ_PHASE_PERFORM3_DONE
    CONFIRM3_CANCELLED = lib.MJ_PHASE_CONFIRM3_CANCELLED
    CONFIRM3 = lib.MJ_PHASE_CONFIRM3
    PREPARE = lib.MJ_PHASE_PREPARE
    FINISH2 = lib.MJ_PHASE_FINISH2
    FINISH3 = lib.MJ_PHASE_FINISH3


class JobType(_Labelled):
    """virDomainJobType, as reported by job info."""

    NONE = lib.MJ_JOB_INFO_NONE
    BOUNDED = lib.MJ_JOB_INFO_BOUNDED
    UNBOUNDED = lib.MJ_JOB_INFO_UNBOUNDED
    COMPLETED = lib.MJ_JOB_INFO_COMPLETED
    FAILED = lib.MJ_JOB_INFO_FAILED
    CANCELLED = lib.MJ_JOB_INFO_CANCELLED


class ErrorCode(IntEnum):
    """libvirt's virErrorNumber values that pymigjob reports."""

    INTERNAL_ERROR = lib.MJ_ERR_INTERNAL_ERROR
    NO_MEMORY = lib.MJ_ERR_NO_MEMORY
    INVALID_ARG = lib.MJ_ERR_INVALID_ARG
    OPERATION_FAILED = lib.MJ_ERR_OPERATION_FAILED
    SYSTEM_ERROR = lib.MJ_ERR_SYSTEM_ERROR
    NO_DOMAIN = lib.MJ_ERR_NO_DOMAIN
    OPERATION_INVALID = lib.MJ_ERR_OPERATION_INVALID
    OPERATION_TIMEOUT = lib.MJ_ERR_OPERATION_TIMEOUT
    OPERATION_ABORTED = lib.MJ_ERR_OPERATION_ABORTED

    @property
    def prefix(self) -> str:
        """libvirt's text before the message, e.g. "internal error"."""
        return _PREFIXES[self]


_C_TABLES: dict[type[_Labelled], tuple[Callable, Callable, int]] = {
    Job: (lib.mj_job_to_string, lib.mj_job_from_string, lib.MJ_JOB_LAST),
    AsyncJob: (lib.mj_async_job_to_string, lib.mj_async_job_from_string,
               lib.MJ_ASYNC_JOB_LAST),
    Phase: (lib.mj_phase_to_string, lib.mj_phase_from_string, lib.MJ_PHASE_LAST),
    JobType: (lib.mj_job_info_type_to_string, lib.mj_job_info_type_from_string,
              lib.MJ_JOB_INFO_LAST),
}
_FROM_STRING: dict[type[_Labelled], Callable[[bytes], int]] = {}
# per class: members of different IntEnums with one value compare equal
_LABELS: dict[type[_Labelled], tuple[str, ...]] = {}
for _cls, (_to_string, _from_string, _last) in _C_TABLES.items():
    # the Python members and the C table must describe the same enum
    if [m.value for m in _cls] != list(range(_last)):
        raise ImportError(f"{_cls.__name__} does not match the C core's table")
    _FROM_STRING[_cls] = _from_string
    _LABELS[_cls] = tuple(ffi.string(_to_string(m)).decode() for m in _cls)
_PREFIXES = {code: ffi.string(lib.mj_error_prefix(code)).decode() for code in ErrorCode}

#: QUERY | DESTROY | ABORT
DEFAULT_JOB_MASK: int = lib.MJ_DEFAULT_JOB_MASK


def _enum_value(cls: type[IntEnum], value: object, what: str) -> int:
    """An int in cls's range, or TypeError / ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a {cls.__name__}, not {type(value).__name__}")
    if not 0 <= value < len(cls):
        raise ValueError(f"{value!r} is not a valid {cls.__name__}")
    return int(value)


def job_mask(*jobs: int) -> int:
    """libvirt's JOB_MASK for each job, or'ed; JOB_MASK(NONE) is 0."""
    mask = 0
    for job in jobs:
        value = _enum_value(Job, job, "job")
        if value:
            mask |= 1 << (value - 1)
    return mask


def phase_to_string(async_job: int, phase: int) -> str | None:
    """qemuDomainAsyncJobPhaseToString: None when a migration phase is out of range."""
    _enum_value(AsyncJob, async_job, "async_job")
    if isinstance(phase, bool) or not isinstance(phase, int):
        raise TypeError(f"phase must be an int, not {type(phase).__name__}")
    if not -(2**31) <= phase < 2**31:
        phase = -1  # out of range for every table
    text = lib.mj_async_job_phase_to_string(async_job, phase)
    return None if text == NULL else ffi.string(text).decode()


def phase_from_string(async_job: int, text: str | None) -> int:
    """qemuDomainAsyncJobPhaseFromString: None -> 0, unknown -> -1."""
    _enum_value(AsyncJob, async_job, "async_job")
    if text is None:
        return 0
    if not isinstance(text, str):
        raise TypeError(f"text must be a str or None, not {type(text).__name__}")
    if "\0" in text:
        return -1
    return lib.mj_async_job_phase_from_string(async_job, text.encode("utf-8"))
