"""The numbers and texts both backends share, as plain data: enum values,
labels, masks, error prefixes, the phase tables and the limits.

The C core keeps its own copy (csrc/migjob.h, csrc/enums.c, csrc/error.c):
C stays the truth for C, this module for Python, and
tests/backends/test_constants.py holds the two to each other entry by entry
(every ``MJ_*`` name here against the compiled header, every table against
the C functions).  The names are the C ones, so a grep finds both sides.
"""

from __future__ import annotations

# ---- enum values (libvirt 11; the seed's names keep their meaning) ---------

MJ_JOB_NONE = 0
MJ_JOB_QUERY = 1
MJ_JOB_DESTROY = 2
MJ_JOB_SUSPEND = 3
MJ_JOB_MODIFY = 4
MJ_JOB_ABORT = 5
MJ_JOB_MIGRATION_OP = 6
MJ_JOB_MODIFY_MIGRATION_SAFE = 7
MJ_JOB_ASYNC = 8
MJ_JOB_ASYNC_NESTED = 9
MJ_JOB_LAST = 10

MJ_ASYNC_JOB_NONE = 0
MJ_ASYNC_JOB_MIGRATION_OUT = 1
MJ_ASYNC_JOB_MIGRATION_IN = 2
MJ_ASYNC_JOB_SAVE = 3
MJ_ASYNC_JOB_DUMP = 4
MJ_ASYNC_JOB_SNAPSHOT = 5
MJ_ASYNC_JOB_START = 6
MJ_ASYNC_JOB_BACKUP = 7
MJ_ASYNC_JOB_LAST = 8

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
MJ_PHASE_POSTCOPY_FAILED = 10
MJ_PHASE_BEGIN_RESUME = 11
MJ_PHASE_PERFORM_RESUME = 12
MJ_PHASE_CONFIRM_RESUME = 13
MJ_PHASE_PREPARE_RESUME = 14
MJ_PHASE_FINISH_RESUME = 15
MJ_PHASE_LAST = 16

#: the agent slot's kinds (virDomainAgentJob)
MJ_AGENT_JOB_NONE = 0
MJ_AGENT_JOB_QUERY = 1
MJ_AGENT_JOB_MODIFY = 2
MJ_AGENT_JOB_LAST = 3

MJ_JOB_INFO_NONE = 0
MJ_JOB_INFO_BOUNDED = 1
MJ_JOB_INFO_UNBOUNDED = 2
MJ_JOB_INFO_COMPLETED = 3
MJ_JOB_INFO_FAILED = 4
MJ_JOB_INFO_CANCELLED = 5
MJ_JOB_INFO_LAST = 6

# libvirt 11's job data: virDomainJobStatus (POSTCOPY_RECOVER included) and
# virDomainJobOperation
MJ_JOB_STATE_NONE = 0
MJ_JOB_STATE_ACTIVE = 1
MJ_JOB_STATE_MIGRATING = 2
MJ_JOB_STATE_HYPERVISOR_COMPLETED = 3
MJ_JOB_STATE_PAUSED = 4
MJ_JOB_STATE_POSTCOPY = 5
MJ_JOB_STATE_POSTCOPY_PAUSED = 6
MJ_JOB_STATE_POSTCOPY_RECOVER = 7
MJ_JOB_STATE_COMPLETED = 8
MJ_JOB_STATE_FAILED = 9
MJ_JOB_STATE_CANCELED = 10
MJ_JOB_STATE_LAST = 11

MJ_JOB_OPERATION_UNKNOWN = 0
MJ_JOB_OPERATION_START = 1
MJ_JOB_OPERATION_SAVE = 2
MJ_JOB_OPERATION_RESTORE = 3
MJ_JOB_OPERATION_MIGRATION_IN = 4
MJ_JOB_OPERATION_MIGRATION_OUT = 5
MJ_JOB_OPERATION_SNAPSHOT = 6
MJ_JOB_OPERATION_SNAPSHOT_REVERT = 7
MJ_JOB_OPERATION_DUMP = 8
MJ_JOB_OPERATION_BACKUP = 9
MJ_JOB_OPERATION_SNAPSHOT_DELETE = 10
MJ_JOB_OPERATION_LAST = 11

#: job_stats' flags (virDomainGetJobStats)
MJ_JOB_STATS_COMPLETED = 1
MJ_JOB_STATS_KEEP_COMPLETED = 2

# libvirt's virErrorNumber values
MJ_ERR_OK = 0
MJ_ERR_INTERNAL_ERROR = 1
MJ_ERR_NO_MEMORY = 2
MJ_ERR_INVALID_ARG = 8
MJ_ERR_OPERATION_FAILED = 9
MJ_ERR_XML_ERROR = 27
MJ_ERR_SYSTEM_ERROR = 38
MJ_ERR_NO_DOMAIN = 42
MJ_ERR_OPERATION_INVALID = 55
MJ_ERR_OPERATION_TIMEOUT = 68
MJ_ERR_ARGUMENT_UNSUPPORTED = 74
MJ_ERR_OPERATION_ABORTED = 78
MJ_ERR_OPERATION_UNSUPPORTED = 84

# ---- limits ------------------------------------------------------------------

#: the most references a domain counts (C's INT_MAX); one more is refused
MJ_REFS_MAX = 2**31 - 1
#: names (domain, API, cancel reason) are at most this many UTF-8 bytes
MJ_NAME_MAX = 1024
#: seconds one wait may block before Python gets to run signal handlers
MJ_WAIT_SLICE = 0.05
#: a nowait begin's result in C when it would have had to wait
MJ_BUSY = 2
#: the slots, as mj_begin_abandon names them (nested jobs are in the sync slot)
MJ_SLOT_SYNC, MJ_SLOT_ASYNC, MJ_SLOT_AGENT = 0, 1, 2
#: the range of a C int: kinds are C ints in the core
C_INT_MIN, C_INT_MAX = -(2**31), 2**31 - 1
#: masks are uint64_t: 0 <= mask < MASK_LIMIT
MASK_LIMIT = 2**64

# ---- masks -----------------------------------------------------------------


def job_mask_bit(job: int) -> int:
    """libvirt's JOB_MASK(job): 1 << (job - 1); JOB_MASK(NONE) = 0."""
    return 1 << (job - 1) if job > 0 else 0


#: JOB_MASK(job) for every job, indexed by the job's value
JOB_BITS = tuple(job_mask_bit(job) for job in range(MJ_JOB_LAST))
#: QUERY | DESTROY | ABORT
MJ_DEFAULT_JOB_MASK = JOB_BITS[MJ_JOB_QUERY] | JOB_BITS[MJ_JOB_DESTROY] | JOB_BITS[MJ_JOB_ABORT]
#: what qemuMigrationJobStart allows during an outgoing migration (0x77)
MJ_MIGRATION_OUT_JOB_MASK = MJ_DEFAULT_JOB_MASK | JOB_BITS[MJ_JOB_SUSPEND] \
    | JOB_BITS[MJ_JOB_MIGRATION_OP] | JOB_BITS[MJ_JOB_MODIFY_MIGRATION_SAFE]
#: ... and during an incoming one (0x42)
MJ_MIGRATION_IN_JOB_MASK = JOB_BITS[MJ_JOB_DESTROY] | JOB_BITS[MJ_JOB_MODIFY_MIGRATION_SAFE]
#: an outgoing migration restored after a restart: no SUSPEND (0x73)
MJ_MIGRATION_OUT_RESTORED_JOB_MASK = MJ_MIGRATION_OUT_JOB_MASK & ~JOB_BITS[MJ_JOB_SUSPEND]
#: a backup: DEFAULT | SUSPEND | MODIFY (0x1f)
MJ_BACKUP_JOB_MASK = MJ_DEFAULT_JOB_MASK | JOB_BITS[MJ_JOB_SUSPEND] | JOB_BITS[MJ_JOB_MODIFY]
#: START and SNAPSHOT create: nothing but DESTROY (0x02)
MJ_DESTROY_ONLY_JOB_MASK = JOB_BITS[MJ_JOB_DESTROY]

# ---- labels (libvirt's VIR_ENUM_IMPL strings) ----------------------------

#: libvirt 11's strings: an async job is never the active job, hence "none"
JOB_LABELS = ("none", "query", "destroy", "suspend", "modify", "abort",
              "migration operation", "modify migration safe", "none", "async nested")
ASYNC_JOB_LABELS = ("none", "migration out", "migration in", "save", "dump",
                    "snapshot", "start", "backup")
AGENT_JOB_LABELS = ("none", "query", "modify")
#: the seed's table, with the spelling libvirt committed ("perform2")
PHASE_LABELS = ("none", "perform2", "begin3", "perform3", "perform3_done",
                "confirm3_cancelled", "confirm3", "prepare", "finish2", "finish3",
                "postcopy_failed", "begin_resume", "perform_resume", "confirm_resume",
                "prepare_resume", "finish_resume")
#: accepted when parsing a phase, besides PHASE_LABELS: the posted seed's spelling
PHASE_ALIASES = {"preform2": MJ_PHASE_PERFORM2}
JOB_INFO_LABELS = ("none", "bounded", "unbounded", "completed", "failed", "cancelled")

#: the async jobs whose phases are migration phases (the others only know "none")
MIGRATION_JOBS = (MJ_ASYNC_JOB_MIGRATION_OUT, MJ_ASYNC_JOB_MIGRATION_IN)

# ---- errors ------------------------------------------------------------------

#: virerror.c's prefix for each code pymigjob reports
ERROR_PREFIXES: dict[int, str] = {
    MJ_ERR_INTERNAL_ERROR: "internal error",
    MJ_ERR_NO_MEMORY: "out of memory",
    MJ_ERR_INVALID_ARG: "invalid argument",
    MJ_ERR_OPERATION_FAILED: "operation failed",
    MJ_ERR_XML_ERROR: "XML error",
    MJ_ERR_SYSTEM_ERROR: "system error",
    MJ_ERR_NO_DOMAIN: "Domain not found",
    MJ_ERR_OPERATION_INVALID: "Requested operation is not valid",
    MJ_ERR_OPERATION_TIMEOUT: "Timed out during operation",
    MJ_ERR_ARGUMENT_UNSUPPORTED: "argument unsupported",
    MJ_ERR_OPERATION_ABORTED: "operation aborted",
    MJ_ERR_OPERATION_UNSUPPORTED: "Operation not supported",
}

#: how the reference limit's OPERATION_FAILED ends ("domain 'vm' already
#: has 2147483647 references, the most it can count")
REFS_LIMIT_TEXT = "references, the most it can count"

# ---- libvirt 11: the async job's life, post-copy, job data -----------------

#: apiFlags is a C unsigned int
API_FLAGS_LIMIT = 2**32
#: each async kind's job data operation (qemu's choice)
OPERATION_OF_ASYNC_JOB = (MJ_JOB_OPERATION_UNKNOWN, MJ_JOB_OPERATION_MIGRATION_OUT,
                          MJ_JOB_OPERATION_MIGRATION_IN, MJ_JOB_OPERATION_SAVE,
                          MJ_JOB_OPERATION_DUMP, MJ_JOB_OPERATION_SNAPSHOT,
                          MJ_JOB_OPERATION_START, MJ_JOB_OPERATION_BACKUP)
#: the mask a restored async job gets unless told: OUT 0x73, IN 0x42,
#: BACKUP 0x1f, the others the default (DESTROY is added anyway)
RESTORED_MASK_OF_ASYNC_JOB = (MJ_DEFAULT_JOB_MASK, MJ_MIGRATION_OUT_RESTORED_JOB_MASK,
                              MJ_MIGRATION_IN_JOB_MASK, MJ_DEFAULT_JOB_MASK,
                              MJ_DEFAULT_JOB_MASK, MJ_DEFAULT_JOB_MASK,
                              MJ_DEFAULT_JOB_MASK, MJ_BACKUP_JOB_MASK)
#: job states that make a migration post-copy (besides the resume range and
#: async_paused)
POSTCOPY_STATES = (MJ_JOB_STATE_POSTCOPY, MJ_JOB_STATE_POSTCOPY_PAUSED,
                   MJ_JOB_STATE_POSTCOPY_RECOVER)
#: virDomainJobStatusToType: the job info type of each job state
INFO_TYPE_OF_STATE = (MJ_JOB_INFO_NONE,) + (MJ_JOB_INFO_UNBOUNDED,) * 7 + (
    MJ_JOB_INFO_COMPLETED, MJ_JOB_INFO_FAILED, MJ_JOB_INFO_CANCELLED)
