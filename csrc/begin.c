/*
 * begin.c: the public begins, one per kind of job: each checks its kind's
 * arguments, then begins through job.c (mj_begin, mj_begin_nowait).
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

/* 0 when `job` is a sync job to begin, else the error (-1) */
static int
begin_check_sync(int job)
{
    if (mj_error_check_range(job, MJ_JOB_LAST, "job") < 0)
        return -1;
    if (job == MJ_JOB_NONE || job >= MJ_JOB_ASYNC)
        return mj_error_invalid_job();
    return 0;
}

int
mj_begin_job(mj_domain *d, int job, const char *api, double timeout,
             double wait_for)
{
    if (begin_check_sync(job) < 0)
        return mj_begin_failed(d, MJ_SLOT_SYNC);
    return mj_begin(d, SLOT_SYNC, job, api, timeout, wait_for,
                    false, 0, MJ_JOB_INFO_NONE);
}

int
mj_begin_job_nowait(mj_domain *d, int job, const char *api)
{
    if (begin_check_sync(job) < 0)
        return mj_begin_failed(d, MJ_SLOT_SYNC);
    return mj_begin_nowait(d, SLOT_SYNC, job, api);
}

/* 0 when `agent_job` is an agent job to begin, else the error (-1) */
static int
begin_check_agent(int agent_job)
{
    if (mj_error_check_range(agent_job, MJ_AGENT_JOB_LAST, "agent job") < 0)
        return -1;
    if (agent_job == MJ_AGENT_JOB_NONE)
        return mj_error_invalid_job();
    return 0;
}

int
mj_begin_agent_job(mj_domain *d, int agent_job, const char *api,
                   double timeout, double wait_for)
{
    if (begin_check_agent(agent_job) < 0)
        return mj_begin_failed(d, MJ_SLOT_AGENT);
    return mj_begin(d, SLOT_AGENT, agent_job, api, timeout, wait_for,
                    false, 0, MJ_JOB_INFO_NONE);
}

int
mj_begin_agent_query_job(mj_domain *d)
{
    return mj_begin(d, SLOT_AGENT, MJ_AGENT_JOB_QUERY, NULL, -1.0, MJ_WAIT_SLICE,
                    false, 0, MJ_JOB_INFO_NONE);
}

int
mj_begin_agent_modify_job(mj_domain *d)
{
    return mj_begin(d, SLOT_AGENT, MJ_AGENT_JOB_MODIFY, NULL, -1.0, MJ_WAIT_SLICE,
                    false, 0, MJ_JOB_INFO_NONE);
}

int
mj_begin_agent_job_nowait(mj_domain *d, int agent_job, const char *api)
{
    if (begin_check_agent(agent_job) < 0)
        return mj_begin_failed(d, MJ_SLOT_AGENT);
    return mj_begin_nowait(d, SLOT_AGENT, agent_job, api);
}

/* the one-argument begins: no API name, the domain's timeout, one slice */
static int
begin_quick(mj_domain *d, int job)
{
    return mj_begin(d, SLOT_SYNC, job, NULL, -1.0, MJ_WAIT_SLICE,
                    false, 0, MJ_JOB_INFO_NONE);
}

int mj_begin_query_job(mj_domain *d) { return begin_quick(d, MJ_JOB_QUERY); }
int mj_begin_destroy_job(mj_domain *d) { return begin_quick(d, MJ_JOB_DESTROY); }
int mj_begin_suspend_job(mj_domain *d) { return begin_quick(d, MJ_JOB_SUSPEND); }
int mj_begin_modify_job(mj_domain *d) { return begin_quick(d, MJ_JOB_MODIFY); }
int mj_begin_abort_job(mj_domain *d) { return begin_quick(d, MJ_JOB_ABORT); }
int mj_begin_migration_op_job(mj_domain *d) { return begin_quick(d, MJ_JOB_MIGRATION_OP); }

int
mj_begin_async_job(mj_domain *d, int async_job, const char *api,
                   double timeout, double wait_for)
{
    if (mj_error_check_range(async_job, MJ_ASYNC_JOB_LAST, "async job") < 0)
        return mj_begin_failed(d, MJ_SLOT_ASYNC);
    if (async_job == MJ_ASYNC_JOB_NONE) {
        mj_error_invalid_job();
        return mj_begin_failed(d, MJ_SLOT_ASYNC);
    }
    return mj_begin(d, SLOT_ASYNC, async_job, api, timeout, wait_for,
                    false, 0, MJ_JOB_INFO_NONE);
}

int
mj_begin_nested_job(mj_domain *d, int async_job, const char *api,
                    double timeout, double wait_for)
{
    if (mj_error_check_range(async_job, MJ_ASYNC_JOB_LAST, "async job") < 0)
        return mj_begin_failed(d, MJ_SLOT_SYNC);
    return mj_begin(d, SLOT_NESTED, async_job, api, timeout, wait_for,
                    false, 0, MJ_JOB_INFO_NONE);
}
