/*
 * test_errors.c: errors: each thread's own, the texts of invalid jobs, ends
 * without a job, nested jobs of the wrong async job
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

#include <stdlib.h>

/* ======================================================================== */
/* errors                                                                   */

static void *errors_fresh_thread_error(void *arg)
{
    int *out = arg;
    out[0] = mj_last_error_code();
    out[1] = strcmp(mj_last_error_message(), "") == 0;
    return NULL;
}

static void *errors_set_error_in_thread(void *arg)
{
    mj_domain *d = arg;
    mj_end_job(d);      /* fails: no job; sets this thread's error only */
    return NULL;
}

void test_error_basics(void)
{
    int out[2] = { -1, -1 };
    pthread_t th;
    pthread_create(&th, NULL, errors_fresh_thread_error, out);
    pthread_join(th, NULL);
    CHECK_INT(out[0], MJ_ERR_OK);
    CHECK_INT(out[1], 1);

    CHECK_STR(mj_error_prefix(MJ_ERR_OPERATION_INVALID),
              "Requested operation is not valid");
    CHECK_STR(mj_error_prefix(MJ_ERR_OPERATION_TIMEOUT),
              "Timed out during operation");
    CHECK_STR(mj_error_prefix(MJ_ERR_OPERATION_FAILED), "operation failed");
    CHECK_STR(mj_error_prefix(MJ_ERR_INTERNAL_ERROR), "internal error");
    CHECK_STR(mj_error_prefix(MJ_ERR_NO_DOMAIN), "Domain not found");
    CHECK_STR(mj_error_prefix(MJ_ERR_OPERATION_ABORTED), "operation aborted");

    mj_domain *d = fresh("vm-err", 1.0, 0, false);
    mj_reset_last_error();
    CHECK_ERR(MJ_ERR_OK, "");

    /* an error in another thread is not ours */
    pthread_create(&th, NULL, errors_set_error_in_thread, d);
    pthread_join(th, NULL);
    CHECK_ERR(MJ_ERR_OK, "");

    /* an error stays until the next failure or reset: success never
     * touches it */
    CHECK_INT(mj_end_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    CHECK_INT(mj_end_job(d), 1);
    CHECK_INT(mj_domain_ref(d), 2);
    CHECK_INT(mj_domain_unref(d), 1);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "b", 1.0,
                                     -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");

    /* a later failure replaces it */
    CHECK_INT(mj_begin_job(d, MJ_JOB_NONE, NULL, 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
    mj_reset_last_error();
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_STR(mj_domain_name(d), "vm-err");
    dispose(d);
}

void test_error_invalid_job(void)
{
    mj_domain *d = fresh("vm-inv", 1.0, 0, false);
    /* kinds inside the enum that are not sync jobs: libvirt's text */
    static const int bad_sync[] = { MJ_JOB_NONE, MJ_JOB_ASYNC,
                                    MJ_JOB_ASYNC_NESTED };
    for (size_t i = 0; i < sizeof(bad_sync) / sizeof(bad_sync[0]); i++) {
        mj_reset_last_error();
        CHECK_INT(mj_begin_job(d, bad_sync[i], "x", 1.0, -1), -1);
        CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
        CHECK_INT(mj_begin_job(d, bad_sync[i], "x", 1.0, 0), -1);
        CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
    }
    mj_reset_last_error();
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_NONE, "x", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_NONE, "x", 1.0, -1,
                                     false, 0), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");

    /* numbers outside the enums: INVALID_ARG */
    static const int out_sync[] = { MJ_JOB_LAST, -1, 100, INT32_MIN };
    for (size_t i = 0; i < sizeof(out_sync) / sizeof(out_sync[0]); i++) {
        mj_reset_last_error();
        CHECK_INT(mj_begin_job(d, out_sync[i], "x", 1.0, -1), -1);
        CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
        CHECK(strlen(mj_last_error_message()) > 0);
    }
    static const int out_async[] = { MJ_ASYNC_JOB_LAST, -1, 1000 };
    for (size_t i = 0; i < sizeof(out_async) / sizeof(out_async[0]); i++) {
        mj_reset_last_error();
        CHECK_INT(mj_begin_async_job(d, out_async[i], "x", 1.0, -1), -1);
        CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
        mj_reset_last_error();
        CHECK_INT(mj_migration_job_start(d, out_async[i], "x", 1.0, -1,
                                         false, 0), -1);
        CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
        mj_reset_last_error();
        CHECK_INT(mj_begin_nested_job(d, out_async[i], "x", 1.0, -1), -1);
        CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
        mj_reset_last_error();
        CHECK_INT(mj_check_migration_job(d, out_async[i]), -1);
        CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
        CHECK(!mj_migration_job_is_active(d, out_async[i]));
    }
    /* a NaN timeout or wait_for */
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "x", 0.0 / 0.0, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "x", 1.0, 0.0 / 0.0), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    /* an API name longer than MJ_NAME_MAX */
    char *longname = malloc(MJ_NAME_MAX + 2);
    memset(longname, 'a', MJ_NAME_MAX + 1);
    longname[MJ_NAME_MAX + 1] = '\0';
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, longname, 1.0, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    mj_reset_last_error();
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, longname, 1.0, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    /* a domain name longer than MJ_NAME_MAX, or none */
    mj_reset_last_error();
    CHECK(mj_domain_new(longname, 1.0, 0, false) == NULL);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    mj_reset_last_error();
    CHECK(mj_domain_new(NULL, 1.0, 0, false) == NULL);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    /* exactly MJ_NAME_MAX bytes is fine */
    longname[MJ_NAME_MAX] = '\0';
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, longname, 1.0, -1), 0);
    CHECK_STR(mj_domain_owner_api(d), longname);
    CHECK_INT(mj_end_job(d), 1);
    free(longname);
    /* phases outside the enum */
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_LAST, NULL), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    CHECK_INT(mj_migration_job_start_phase(d, -1, NULL), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);

    /* nothing changed */
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    CHECK_INT(mj_pending_count(), 0);

    /* an invalid kind is rejected even while the slot is busy, at once */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "m", 1.0, -1), 0);
    double t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_ASYNC, "x", 5.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
    CHECK_RANGE(now_s() - t0, 0.0, 1.0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_end_job(d), 1);
    dispose(d);
}

void test_error_end_without_job(void)
{
    mj_domain *d = fresh("vm-end", 1.0, 0, false);
    CHECK_INT(mj_end_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    mj_reset_last_error();
    CHECK_INT(mj_end_nested_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no nested job is active on the domain");
    mj_reset_last_error();
    CHECK_INT(mj_end_async_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_finish(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);

    /* a plain sync job is not a nested one; nothing changes */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    mj_reset_last_error();
    CHECK_INT(mj_end_nested_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no nested job is active on the domain");
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_INT(mj_domain_refs(d), 2);
    /* a sync job is not an async job */
    mj_reset_last_error();
    CHECK_INT(mj_end_async_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);

    /* an async job without a sync job: end_job has nothing to end */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    mj_reset_last_error();
    CHECK_INT(mj_end_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_SAVE);
    CHECK_INT(mj_domain_refs(d), 2);
    /* end_job also ends a nested job */
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "n", 1.0, -1), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_ASYNC_NESTED);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_SAVE);
    CHECK_INT(mj_end_async_job(d), 1);
    dispose(d);
}

void test_error_nested_wrong_async(void)
{
    mj_domain *d = fresh("vm-nest", 1.0, 0, false);
    /* no async job at all: active kind is 0 */
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "n", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "unexpected async job 1 type expected 0");
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);

    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    mj_reset_last_error();
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "n", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "unexpected async job 1 type expected 3");
    mj_reset_last_error();
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_DUMP, "n", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "unexpected async job 4 type expected 3");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    /* the right kind works */
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "n", 1.0, -1), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_ASYNC_NESTED);
    CHECK_INT(mj_domain_owner_thread(d), self_id());
    CHECK_STR(mj_domain_owner_api(d), "n");
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}
