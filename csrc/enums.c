/*
 * enums.c: every enum <-> string table, each written once, in the manner of
 * libvirt's VIR_ENUM_IMPL (a table per enum, ...ToString / ...FromString
 * from it), with each public function written out so that grep finds it.
 * Python keeps the same tables as data (pymigjob/_constants.py) and a test
 * holds the two to each other.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <string.h>

/* the index of `text` in `table` (exact, case sensitive; the first of
 * two equal labels), or -1 when it is not there or NULL */
static int
enums_from_string(const char *const *table, int last, const char *text)
{
    if (!text)
        return -1;
    for (int i = 0; i < last; i++)
        if (strcmp(table[i], text) == 0)
            return i;
    return -1;
}

/* table[value], or NULL when value is out of range */
static const char *
enums_to_string(const char *const *table, int last, int value)
{
    return value >= 0 && value < last ? table[value] : NULL;
}

/* a table must have one label per member of its enum */
#define ENUMS_TABLE_CHECK(table, last) \
    _Static_assert(sizeof(table) / sizeof((table)[0]) == (last), \
                   #table " does not match its enum")

/* libvirt 11's strings: an async job is never the active job, hence "none" */
static const char *const enums_job[] = {
    "none", "query", "destroy", "suspend", "modify", "abort",
    "migration operation", "modify migration safe", "none", "async nested",
};
ENUMS_TABLE_CHECK(enums_job, MJ_JOB_LAST);

static const char *const enums_async_job[] = {
    "none", "migration out", "migration in", "save", "dump",
    "snapshot", "start", "backup",
};
ENUMS_TABLE_CHECK(enums_async_job, MJ_ASYNC_JOB_LAST);

/* the seed's table, with the spelling that libvirt committed */
static const char *const enums_phase[] = {
    "none", "perform2", "begin3", "perform3", "perform3_done",
    "confirm3_cancelled", "confirm3", "prepare", "finish2", "finish3",
    "postcopy_failed", "begin_resume", "perform_resume", "confirm_resume",
    "prepare_resume", "finish_resume",
};
ENUMS_TABLE_CHECK(enums_phase, MJ_PHASE_LAST);

static const char *const enums_job_info_type[] = {
    "none", "bounded", "unbounded", "completed", "failed", "cancelled",
};
ENUMS_TABLE_CHECK(enums_job_info_type, MJ_JOB_INFO_LAST);

static const char *const enums_agent_job[] = { "none", "query", "modify" };
ENUMS_TABLE_CHECK(enums_agent_job, MJ_AGENT_JOB_LAST);

const char *
mj_agent_job_to_string(int agent_job)
{
    return enums_to_string(enums_agent_job, MJ_AGENT_JOB_LAST, agent_job);
}

int
mj_agent_job_from_string(const char *text)
{
    return enums_from_string(enums_agent_job, MJ_AGENT_JOB_LAST, text);
}

const char *
mj_job_to_string(int job)
{
    return enums_to_string(enums_job, MJ_JOB_LAST, job);
}

int
mj_job_from_string(const char *text)
{
    return enums_from_string(enums_job, MJ_JOB_LAST, text);
}

const char *
mj_async_job_to_string(int async_job)
{
    return enums_to_string(enums_async_job, MJ_ASYNC_JOB_LAST, async_job);
}

int
mj_async_job_from_string(const char *text)
{
    return enums_from_string(enums_async_job, MJ_ASYNC_JOB_LAST, text);
}

const char *
mj_phase_to_string(int phase)
{
    return enums_to_string(enums_phase, MJ_PHASE_LAST, phase);
}

int
mj_phase_from_string(const char *text)
{
    /* the posted seed spelled it "preform2"; accept it on input only */
    if (text && strcmp(text, "preform2") == 0)
        return MJ_PHASE_PERFORM2;
    return enums_from_string(enums_phase, MJ_PHASE_LAST, text);
}

const char *
mj_job_info_type_to_string(int type)
{
    return enums_to_string(enums_job_info_type, MJ_JOB_INFO_LAST, type);
}

int
mj_job_info_type_from_string(const char *text)
{
    return enums_from_string(enums_job_info_type, MJ_JOB_INFO_LAST, text);
}

/* the async jobs whose phases are migration phases; every other kind only
 * knows "none" (qemuDomainAsyncJobPhase{To,From}String).  A switch over the
 * enum, so that a new async kind is a -Wswitch warning until it is placed. */
static bool
enums_has_migration_phases(int async_job)
{
    switch ((mj_async_job)async_job) {
    case MJ_ASYNC_JOB_MIGRATION_OUT:
    case MJ_ASYNC_JOB_MIGRATION_IN:
        return true;
    case MJ_ASYNC_JOB_NONE:
    case MJ_ASYNC_JOB_SAVE:
    case MJ_ASYNC_JOB_DUMP:
    case MJ_ASYNC_JOB_SNAPSHOT:
    case MJ_ASYNC_JOB_START:
    case MJ_ASYNC_JOB_BACKUP:
    case MJ_ASYNC_JOB_LAST:
        break;
    }
    return false;
}

const char *
mj_async_job_phase_to_string(int async_job, int phase)
{
    if (enums_has_migration_phases(async_job))
        return mj_phase_to_string(phase);
    return "none";
}

int
mj_async_job_phase_from_string(int async_job, const char *text)
{
    if (!text)
        return 0;
    if (enums_has_migration_phases(async_job))
        return mj_phase_from_string(text);
    return strcmp(text, "none") == 0 ? 0 : -1;
}
