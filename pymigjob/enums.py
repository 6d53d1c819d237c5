"""IntEnums whose values and labels come from the C core's tables (or, when
the pure-Python twin is selected, from its own: see _backend.py)."""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Callable, TypeVar

from ._backend import tables

#: the tables provider: pymigjob._ctables (the C core) or pymigjob.pure._tables
_T = tables()

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
        if member is not None:
            return member  # type: ignore[return-value]
        # the table itself decides the rest (aliases such as "preform2")
        value = _FROM_STRING[cls](text.encode("utf-8")) if "\0" not in text else -1
        if value < 0:
            raise ValueError(f"unknown {cls.__name__} label {text!r}")
        return cls(value)


class Job(_Labelled):
    """Sync job kinds (libvirt 0.9.4 numbering)."""

    NONE = _T.MJ_JOB_NONE
    QUERY = _T.MJ_JOB_QUERY
    DESTROY = _T.MJ_JOB_DESTROY
    SUSPEND = _T.MJ_JOB_SUSPEND
    MODIFY = _T.MJ_JOB_MODIFY
    ABORT = _T.MJ_JOB_ABORT
    MIGRATION_OP = _T.MJ_JOB_MIGRATION_OP
    ASYNC = _T.MJ_JOB_ASYNC
    ASYNC_NESTED = _T.MJ_JOB_ASYNC_NESTED


class AsyncJob(_Labelled):
    NONE = _T.MJ_ASYNC_JOB_NONE
    MIGRATION_OUT = _T.MJ_ASYNC_JOB_MIGRATION_OUT
    MIGRATION_IN = _T.MJ_ASYNC_JOB_MIGRATION_IN
    SAVE = _T.MJ_ASYNC_JOB_SAVE
    DUMP = _T.MJ_ASYNC_JOB_DUMP


class Phase(_Labelled):
    """Migration phases, the seed's ten."""

    NONE = _T.MJ_PHASE_NONE
    PERFORM2 = _T.MJ_PHASE_PERFORM2
    BEGIN3 = _T.MJ_PHASE_BEGIN3
    PERFORM3 = _T.MJ_PHASE_PERFORM3
    PERFORM3_DONE = _T.MJ_PHASE_PERFORM3_DONE
    CONFIRM3_CANCELLED = _T.MJ_PHASE_CONFIRM3_CANCELLED
    CONFIRM3 = _T.MJ_PHASE_CONFIRM3
    PREPARE = _T.MJ_PHASE_PREPARE
    FINISH2 = _T.MJ_PHASE_FINISH2
    FINISH3 = _T.MJ_PHASE_FINISH3


class JobType(_Labelled):
    """virDomainJobType, as reported by job info."""

    NONE = _T.MJ_JOB_INFO_NONE
    BOUNDED = _T.MJ_JOB_INFO_BOUNDED
    UNBOUNDED = _T.MJ_JOB_INFO_UNBOUNDED
    COMPLETED = _T.MJ_JOB_INFO_COMPLETED
    FAILED = _T.MJ_JOB_INFO_FAILED
    CANCELLED = _T.MJ_JOB_INFO_CANCELLED


class ErrorCode(IntEnum):
    """libvirt's virErrorNumber values that pymigjob reports."""

    INTERNAL_ERROR = _T.MJ_ERR_INTERNAL_ERROR
    NO_MEMORY = _T.MJ_ERR_NO_MEMORY
    INVALID_ARG = _T.MJ_ERR_INVALID_ARG
    OPERATION_FAILED = _T.MJ_ERR_OPERATION_FAILED
    SYSTEM_ERROR = _T.MJ_ERR_SYSTEM_ERROR
    NO_DOMAIN = _T.MJ_ERR_NO_DOMAIN
    OPERATION_INVALID = _T.MJ_ERR_OPERATION_INVALID
    OPERATION_TIMEOUT = _T.MJ_ERR_OPERATION_TIMEOUT
    OPERATION_ABORTED = _T.MJ_ERR_OPERATION_ABORTED

    @property
    def prefix(self) -> str:
        """libvirt's text before the message, e.g. "internal error"."""
        return _PREFIXES[self]


_KINDS: dict[type[_Labelled], str] = {
    Job: "job", AsyncJob: "async_job", Phase: "phase", JobType: "job_info_type",
}
_FROM_STRING: dict[type[_Labelled], Callable[[bytes], int]] = {}
# per class: members of different IntEnums with one value compare equal
_LABELS: dict[type[_Labelled], tuple[str, ...]] = {}
# a cache of the table's answers for the members' own labels
_BY_LABEL: dict[type[_Labelled], dict[str, _Labelled]] = {}
for _cls, _kind in _KINDS.items():
    _labels = _T.LABELS[_kind]
    # the Python members and the table must describe the same enum
    if [m.value for m in _cls] != list(range(len(_labels))):
        raise ImportError(f"{_cls.__name__} does not match its table in {_T.__name__}")
    _FROM_STRING[_cls] = _T.FROM_STRING[_kind]
    _LABELS[_cls] = tuple(_labels)
    # first label wins, as in the table's own lookup ("none" is Job.NONE)
    _BY_LABEL[_cls] = {}
    for _member in reversed(_cls):
        _BY_LABEL[_cls][_labels[_member]] = _member
_PREFIXES = {code: _T.error_prefix(code) for code in ErrorCode}
_phase_to_string = _T.async_job_phase_to_string
_phase_from_string = _T.async_job_phase_from_string

#: QUERY | DESTROY | ABORT
DEFAULT_JOB_MASK: int = _T.MJ_DEFAULT_JOB_MASK


def _kind_type_error(cls: type, value: object, what: str, noun: str | None = None) -> TypeError:
    """The TypeError for a kind that is no int, a bool, or a member of another
    enum (an AsyncJob where a Job is expected: IntEnums of one value compare
    equal, so without this check one kind would silently pass for another).
    It names both types, and the member (`noun` replaces "a <cls>" for
    values that are no enum member)."""
    name = cls.__name__
    a_cls = f"{'an' if name[0] in 'AEIOU' else 'a'} {name}"
    if isinstance(value, Enum):
        member = value.name
        shown = f"{type(value).__name__}.{member}" if member else repr(value)
        return TypeError(f"{what} must be {a_cls}, not {shown}")
    return TypeError(f"{what} must be {noun or a_cls}, not {type(value).__name__}")


def _check_kind_type(cls: type, value: object, what: str) -> None:
    """A kind of `cls` must be a plain int or a member of cls itself: not a
    bool, not another enum's member, not something with __int__ (TypeError).
    The range is for the caller (or the core) to check."""
    vcls = value.__class__
    if vcls is int or vcls is cls:
        return
    if isinstance(value, bool) or not isinstance(value, int) or isinstance(value, Enum):
        raise _kind_type_error(cls, value, what)


def _enum_value(cls: type[IntEnum], value: object, what: str) -> int:
    """An int in cls's range, or TypeError / ValueError."""
    if value.__class__ is cls:
        return value  # type: ignore[return-value]
    _check_kind_type(cls, value, what)
    if value not in cls._value2member_map_:
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
    if phase.__class__ is not int and phase.__class__ is not Phase and (
            isinstance(phase, bool) or not isinstance(phase, int) or isinstance(phase, Enum)):
        raise _kind_type_error(Phase, phase, "phase", "an int")
    if not -(2**31) <= phase < 2**31:
        phase = -1  # out of range for every table
    return _phase_to_string(async_job, phase)


def phase_from_string(async_job: int, text: str | None) -> int:
    """qemuDomainAsyncJobPhaseFromString: None -> 0, unknown -> -1."""
    _enum_value(AsyncJob, async_job, "async_job")
    if text is None:
        return 0
    if not isinstance(text, str):
        raise TypeError(f"text must be a str or None, not {type(text).__name__}")
    if "\0" in text:
        return -1
    return _phase_from_string(async_job, text.encode("utf-8"))
