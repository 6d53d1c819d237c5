"""The C core's tables, as a tables provider for pymigjob.enums (the
default; see pymigjob/_backend.py).  Same interface as pymigjob/pure/_tables.py:
the ``MJ_*`` constants, LABELS, FROM_STRING (UTF-8 bytes -> index, here the C
functions themselves), error_prefix and the two phase functions."""

from __future__ import annotations

from typing import Any, Callable

from ._binding import NULL, ffi, lib


def __getattr__(name: str) -> Any:
    """The ``MJ_*`` constants, straight from the compiled header."""
    if name.startswith("MJ_"):
        return getattr(lib, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _labels(to_string: Callable[[int], Any], last: int) -> tuple[str, ...]:
    return tuple(ffi.string(to_string(i)).decode() for i in range(last))


LABELS: dict[str, tuple[str, ...]] = {
    "job": _labels(lib.mj_job_to_string, lib.MJ_JOB_LAST),
    "async_job": _labels(lib.mj_async_job_to_string, lib.MJ_ASYNC_JOB_LAST),
    "phase": _labels(lib.mj_phase_to_string, lib.MJ_PHASE_LAST),
    "job_info_type": _labels(lib.mj_job_info_type_to_string, lib.MJ_JOB_INFO_LAST),
}

FROM_STRING: dict[str, Callable[[bytes], int]] = {
    "job": lib.mj_job_from_string,
    "async_job": lib.mj_async_job_from_string,
    "phase": lib.mj_phase_from_string,
    "job_info_type": lib.mj_job_info_type_from_string,
}


def error_prefix(code: int) -> str | None:
    text = lib.mj_error_prefix(code)
    return None if text == NULL else ffi.string(text).decode()


def c_async_job_phase_to_string(async_job: int, phase: int) -> str | None:
    """qemuDomainAsyncJobPhaseToString, one call into C."""
    text = lib.mj_async_job_phase_to_string(async_job, phase)
    return None if text == NULL else ffi.string(text).decode()


# every in-range answer, read from C once (a dict lookup beats a C call plus
# a decode); anything else is asked of C
_PHASE_TEXT = {(a, p): c_async_job_phase_to_string(a, p)
               for a in range(lib.MJ_ASYNC_JOB_LAST) for p in range(lib.MJ_PHASE_LAST)}


def async_job_phase_to_string(async_job: int, phase: int) -> str | None:
    try:
        return _PHASE_TEXT[async_job, phase]
    except KeyError:
        return c_async_job_phase_to_string(async_job, phase)


#: (async_job, UTF-8 bytes) -> phase or -1
async_job_phase_from_string: Callable[[int, bytes], int] = lib.mj_async_job_phase_from_string
