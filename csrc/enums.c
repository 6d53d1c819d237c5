/*
 * enums.c: every enum <-> string table, each written once, in the manner of
 * libvirt's VIR_ENUM_IMPL.  The Python layer reads its labels from here.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <string.h>

static int
enum_from_string(const char *const *table, int last, const char *text)
{
    if (!text)
        return -1;
    for (int i = 0; i < last; i++)
        if (strcmp(table[i], text) == 0)
            return i;
    return -1;
}

/* one table plus its two conversion functions; the static assert keeps the
 * table and the enum the same length */
#define MJ_ENUM_IMPL(name, last, ...)                                       \
    static const char *const name##_table[] = { __VA_ARGS__ };             \
    _Static_assert(sizeof(name##_table) / sizeof(name##_table[0]) == (last), \
                   #name " table does not match its enum");                 \
    const char *mj_##name##_to_string(int value)                            \
    {                                                                       \
        return value >= 0 && value < (last) ? name##_table[value] : NULL;   \
    }                                                                       \
    static int name##_lookup(const char *text)                              \
    {                                                                       \
        return enum_from_string(name##_table, (last), text);                \
    }

/* 0.9.4 strings: an async job is never the active job, hence "none" */
MJ_ENUM_IMPL(job, MJ_JOB_LAST,
             "none", "query", "destroy", "suspend", "modify", "abort",
             "migration operation", "none", "async nested")

MJ_ENUM_IMPL(async_job, MJ_ASYNC_JOB_LAST,
             "none", "migration out", "migration in", "save", "dump")

/* the seed's table, with the spelling that libvirt committed */
MJ_ENUM_IMPL(phase, MJ_PHASE_LAST,
             "none", "perform2", "begin3", "perform3", "perform3_done",
             "confirm3_cancelled", "confirm3", "prepare", "finish2",
             "finish3")

MJ_ENUM_IMPL(job_info_type, MJ_JOB_INFO_LAST,
             "none", "bounded", "unbounded", "completed", "failed",
             "cancelled")

int mj_job_from_string(const char *text) { return job_lookup(text); }
int mj_async_job_from_string(const char *text) { return async_job_lookup(text); }
int mj_job_info_type_from_string(const char *text) { return job_info_type_lookup(text); }

int
mj_phase_from_string(const char *text)
{
    /* the posted seed spelled it "preform2"; accept it on input only */
    if (text && strcmp(text, "preform2") == 0)
        return MJ_PHASE_PERFORM2;
    return phase_lookup(text);
}

static bool
is_migration(int async_job)
{
    return async_job == MJ_ASYNC_JOB_MIGRATION_OUT ||
           async_job == MJ_ASYNC_JOB_MIGRATION_IN;
}

const char *
mj_async_job_phase_to_string(int async_job, int phase)
{
    if (is_migration(async_job))
        return mj_phase_to_string(phase);
    return "none";
}

int
mj_async_job_phase_from_string(int async_job, const char *text)
{
    if (!text)
        return 0;
    if (is_migration(async_job))
        return mj_phase_from_string(text);
    return strcmp(text, "none") == 0 ? 0 : -1;
}
