"""The pure twin's own enum and error tables, in Python.

The same data as the C core's tables (csrc/enums.c, csrc/error.c and the
constants of csrc/migjob.h), written out again so that the pure-Python
implementation works where the C extension cannot be built.  tests/
test_differential.py checks that the two agree entry by entry.

This module is also a *tables provider* for pymigjob.enums (see
pymigjob/_backend.py): it has the ``MJ_*`` constants under the C names, the
labels of each enum, a from-string lookup per enum (taking UTF-8 bytes, like
the C functions), the error prefixes and libvirt's two phase functions.
"""

from __future__ import annotations

from typing import Callable

# ---- enum values (libvirt 0.9.4 and the seed) ------------------------------

MJ_JOB_NONE = 0
MJ_JOB_QUERY = 1
MJ_JOB_DESTROY = 2
MJ_JOB_SUSPEND = 3
MJ_JOB_MODIFY = 4
MJ_JOB_ABORT = 5
MJ_JOB_MIGRATION_OP = 6
MJ_JOB_ASYNC = 7
MJ_JOB_ASYNC_NESTED = 8
MJ_JOB_LAST = 9

MJ_ASYNC_JOB_NONE = 0
MJ_ASYNC_JOB_MIGRATION_OUT = 1
MJ_ASYNC_JOB_MIGRATION_IN = 2
MJ_ASYNC_JOB_SAVE = 3
MJ_ASYNC_JOB_DUMP = 4
MJ_ASYNC_JOB_LAST = 5

MJ_PHASE_NONE = 0
MJ_PHASE_PERFORM2 = 1
MJ_PHASE_BEGIN3 = 2
MJ_PHASE_PERFORM3 = 3
MJ_PHASE_PERFORM3_DONE = 4
MJ_PHASE_CONFIRM3_CANCELLED = 5
MJ_PHASE_CONFIRM3 = 6
MJ_PHASE_PREPARE = 7
MJ_PHASE_FINISH2 = 8
MJ_PHASE_FINISH3 = 9
MJ_PHASE_LAST = 10

MJ_JOB_INFO_NONE = 0
MJ_JOB_INFO_BOUNDED = 1
MJ_JOB_INFO_UNBOUNDED = 2
MJ_JOB_INFO_COMPLETED = 3
MJ_JOB_INFO_FAILED = 4
MJ_JOB_INFO_CANCELLED = 5
MJ_JOB_INFO_LAST = 6

# libvirt's virErrorNumber values
MJ_ERR_OK = 0
MJ_ERR_INTERNAL_ERROR = 1
MJ_ERR_NO_MEMORY = 2
MJ_ERR_INVALID_ARG = 8
MJ_ERR_OPERATION_FAILED = 9
MJ_ERR_SYSTEM_ERROR = 38
MJ_ERR_NO_DOMAIN = 42
MJ_ERR_OPERATION_INVALID = 55
MJ_ERR_OPERATION_TIMEOUT = 68
MJ_ERR_OPERATION_ABORTED = 78

#: the most references a domain counts (C's INT_MAX); one more is refused
MJ_REFS_MAX = 2**31 - 1
#: names (domain, API, cancel reason) are at most this many UTF-8 bytes
MJ_NAME_MAX = 1024
#: seconds one wait may block before Python gets to run signal handlers
MJ_WAIT_SLICE = 0.05


def job_mask_bit(job: int) -> int:
    """libvirt's JOB_MASK(job): 1 << (job - 1); JOB_MASK(NONE) = 0."""
    return 1 << (job - 1) if job > 0 else 0


#: QUERY | DESTROY | ABORT
MJ_DEFAULT_JOB_MASK = (job_mask_bit(MJ_JOB_QUERY) | job_mask_bit(MJ_JOB_DESTROY)
                       | job_mask_bit(MJ_JOB_ABORT))
#: what qemuMigrationJobStart allows during an outgoing migration
MJ_MIGRATION_OUT_JOB_MASK = (MJ_DEFAULT_JOB_MASK | job_mask_bit(MJ_JOB_SUSPEND)
                             | job_mask_bit(MJ_JOB_MIGRATION_OP))

# ---- labels (libvirt's VIR_ENUM_IMPL strings) ----------------------------

#: 0.9.4 strings: an async job is never the active job, hence "none"
JOB_LABELS = ("none", "query", "destroy", "suspend", "modify", "abort",
              "migration operation", "none", "async nested")
ASYNC_JOB_LABELS = ("none", "migration out", "migration in", "save", "dump")
#: the seed's table, with the spelling libvirt committed ("perform2")
PHASE_LABELS = ("none", "perform2", "begin3", "perform3", "perform3_done",
                "confirm3_cancelled", "confirm3", "prepare", "finish2", "finish3")
JOB_INFO_LABELS = ("none", "bounded", "unbounded", "completed", "failed", "cancelled")

#: labels per enum, keyed like pymigjob.enums asks for them
LABELS: dict[str, tuple[str, ...]] = {
    "job": JOB_LABELS,
    "async_job": ASYNC_JOB_LABELS,
    "phase": PHASE_LABELS,
    "job_info_type": JOB_INFO_LABELS,
}


def _index(labels: tuple[str, ...]) -> dict[bytes, int]:
    """label -> index; the first of two equal labels wins (as a linear scan)."""
    index: dict[bytes, int] = {}
    for i, label in enumerate(labels):
        index.setdefault(label.encode("utf-8"), i)
    return index


_JOB_INDEX = _index(JOB_LABELS)
_ASYNC_JOB_INDEX = _index(ASYNC_JOB_LABELS)
_PHASE_INDEX = _index(PHASE_LABELS)
_PHASE_INDEX[b"preform2"] = MJ_PHASE_PERFORM2  # the posted seed's spelling, input only
_JOB_INFO_INDEX = _index(JOB_INFO_LABELS)

#: from-string per enum: UTF-8 bytes -> index, -1 when unknown (exact, case sensitive)
FROM_STRING: dict[str, Callable[[bytes], int]] = {
    "job": lambda data: _JOB_INDEX.get(data, -1),
    "async_job": lambda data: _ASYNC_JOB_INDEX.get(data, -1),
    "phase": lambda data: _PHASE_INDEX.get(data, -1),
    "job_info_type": lambda data: _JOB_INFO_INDEX.get(data, -1),
}

# ---- errors ------------------------------------------------------------------

#: virerror.c's prefix for each code pymigjob reports
PREFIXES: dict[int, str] = {
    MJ_ERR_INTERNAL_ERROR: "internal error",
    MJ_ERR_NO_MEMORY: "out of memory",
    MJ_ERR_INVALID_ARG: "invalid argument",
    MJ_ERR_OPERATION_FAILED: "operation failed",
    MJ_ERR_SYSTEM_ERROR: "system error",
    MJ_ERR_NO_DOMAIN: "Domain not found",
    MJ_ERR_OPERATION_INVALID: "Requested operation is not valid",
    MJ_ERR_OPERATION_TIMEOUT: "Timed out during operation",
    MJ_ERR_OPERATION_ABORTED: "operation aborted",
}


def error_prefix(code: int) -> str | None:
    return PREFIXES.get(code)


# ---- qemuDomainAsyncJobPhase{To,From}String ------------------------------------

_MIGRATIONS = (MJ_ASYNC_JOB_MIGRATION_OUT, MJ_ASYNC_JOB_MIGRATION_IN)


def async_job_phase_to_string(async_job: int, phase: int) -> str | None:
    """Migration jobs use the phase table (None out of range); others say "none"."""
    if async_job in _MIGRATIONS:
        return PHASE_LABELS[phase] if 0 <= phase < MJ_PHASE_LAST else None
    return "none"


def async_job_phase_from_string(async_job: int, data: bytes) -> int:
    """UTF-8 text -> phase; -1 when unknown; non-migration jobs know only "none"."""
    if async_job in _MIGRATIONS:
        return _PHASE_INDEX.get(data, -1)
    return 0 if data == b"none" else -1
