"""The top-level enum helpers of api.md, in pure Python over the pure tables.
The enum classes themselves are pymigjob.enums' (shared with the C-backed
package; their values and labels come from whichever tables are selected)."""

from __future__ import annotations

from enum import Enum

from ..enums import AsyncJob, Job, Phase, _check_kind_type, _kind_type_error
from . import _tables as T

#: QUERY | DESTROY | ABORT
DEFAULT_JOB_MASK: int = T.MJ_DEFAULT_JOB_MASK

_MIGRATIONS = (T.MJ_ASYNC_JOB_MIGRATION_OUT, T.MJ_ASYNC_JOB_MIGRATION_IN)
_INT_MIN, _INT_MAX = -(2**31), 2**31
_ENUMS = {"Job": Job, "AsyncJob": AsyncJob}


def _kind(value: object, last: int, enum_name: str, what: str) -> int:
    _check_kind_type(_ENUMS[enum_name], value, what)
    if not 0 <= value < last:
        raise ValueError(f"{value!r} is not a valid {enum_name}")
    return int(value)


def job_mask(*jobs: int) -> int:
    """libvirt's JOB_MASK for each job, or'ed; JOB_MASK(NONE) is 0."""
    mask = 0
    for job in jobs:
        value = _kind(job, T.MJ_JOB_LAST, "Job", "job")
        if value:
            mask |= 1 << (value - 1)
    return mask


def phase_to_string(async_job: int, phase: int) -> str | None:
    """qemuDomainAsyncJobPhaseToString: None when a migration phase is out of range."""
    async_job = _kind(async_job, T.MJ_ASYNC_JOB_LAST, "AsyncJob", "async_job")
    if phase.__class__ is not int and phase.__class__ is not Phase and (
            isinstance(phase, bool) or not isinstance(phase, int) or isinstance(phase, Enum)):
        raise _kind_type_error(Phase, phase, "phase", "an int")
    return T.async_job_phase_to_string(async_job, phase)


def phase_from_string(async_job: int, text: str | None) -> int:
    """qemuDomainAsyncJobPhaseFromString: None -> 0, unknown -> -1."""
    async_job = _kind(async_job, T.MJ_ASYNC_JOB_LAST, "AsyncJob", "async_job")
    if text is None:
        return 0
    if not isinstance(text, str):
        raise TypeError(f"text must be a str or None, not {type(text).__name__}")
    if "\0" in text:
        return -1
    return T.async_job_phase_from_string(async_job, text.encode("utf-8"))


__all__ = ["DEFAULT_JOB_MASK", "AsyncJob", "Job", "job_mask", "phase_from_string",
           "phase_to_string"]
