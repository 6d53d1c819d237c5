/*
 * test_domain.c: enums and strings, errors, refs, getters (owners,
 * job info), removal, pins and dead domains
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

#include <stdlib.h>

/* ======================================================================== */
/* enum tables                                                              */

void test_enum_job(void)
{
    static const char *const names[] = {
        "none", "query", "destroy", "suspend", "modify", "abort",
        "migration operation", "modify migration safe", "none", "async nested"
    };
    CHECK_INT(MJ_JOB_LAST, 10);
    for (int i = 0; i < MJ_JOB_LAST; i++) {
        CHECK_STR(mj_job_to_string(i), names[i]);
        /* "none" is listed twice; the first match (NONE) wins */
        CHECK_INT(mj_job_from_string(names[i]), i == MJ_JOB_ASYNC ? 0 : i);
    }
    CHECK_STR(mj_job_to_string(MJ_JOB_LAST), NULL);
    CHECK_STR(mj_job_to_string(-1), NULL);
    CHECK_STR(mj_job_to_string(1000), NULL);
    CHECK_INT(mj_job_from_string(NULL), -1);
    CHECK_INT(mj_job_from_string(""), -1);
    CHECK_INT(mj_job_from_string("Query"), -1);
    CHECK_INT(mj_job_from_string("QUERY"), -1);
    CHECK_INT(mj_job_from_string("query "), -1);
    CHECK_INT(mj_job_from_string(" query"), -1);
    CHECK_INT(mj_job_from_string("migration_operation"), -1);
    CHECK_INT(mj_job_from_string("async"), -1);
}

void test_enum_async_job(void)
{
    static const char *const names[] = {
        "none", "migration out", "migration in", "save", "dump",
        "snapshot", "start", "backup"
    };
    CHECK_INT(MJ_ASYNC_JOB_LAST, 8);
    for (int i = 0; i < MJ_ASYNC_JOB_LAST; i++) {
        CHECK_STR(mj_async_job_to_string(i), names[i]);
        CHECK_INT(mj_async_job_from_string(names[i]), i);
    }
    CHECK_STR(mj_async_job_to_string(MJ_ASYNC_JOB_LAST), NULL);
    CHECK_STR(mj_async_job_to_string(-1), NULL);
    CHECK_INT(mj_async_job_from_string(NULL), -1);
    CHECK_INT(mj_async_job_from_string(""), -1);
    CHECK_INT(mj_async_job_from_string("Snapshot"), -1);
    CHECK_INT(mj_async_job_from_string("Save"), -1);
    CHECK_INT(mj_async_job_from_string("migration_out"), -1);
}

void test_enum_phase(void)
{
    static const char *const names[] = {
        "none", "perform2", "begin3", "perform3", "perform3_done",
        "confirm3_cancelled", "confirm3", "prepare", "finish2", "finish3",
        "postcopy_failed", "begin_resume", "perform_resume", "confirm_resume",
        "prepare_resume", "finish_resume"
    };
    CHECK_INT(MJ_PHASE_LAST, 16);
    for (int i = 0; i < MJ_PHASE_LAST; i++) {
        CHECK_STR(mj_phase_to_string(i), names[i]);
        CHECK_INT(mj_phase_from_string(names[i]), i);
    }
    /* emit perform2, accept the seed's preform2 */
    CHECK_STR(mj_phase_to_string(MJ_PHASE_PERFORM2), "perform2");
    CHECK_INT(mj_phase_from_string("preform2"), MJ_PHASE_PERFORM2);
    CHECK_INT(mj_phase_from_string("Preform2"), -1);
    CHECK_INT(mj_phase_from_string("PERFORM2"), -1);
    CHECK_INT(mj_phase_from_string("preform3"), -1);
    CHECK_INT(mj_phase_from_string("postcopy_failed"), MJ_PHASE_POSTCOPY_FAILED);
    CHECK_INT(mj_phase_from_string("Postcopy_failed"), -1);
    CHECK_INT(mj_phase_from_string("Begin3"), -1);
    CHECK_INT(mj_phase_from_string(NULL), -1);
    CHECK_INT(mj_phase_from_string(""), -1);
    CHECK_STR(mj_phase_to_string(MJ_PHASE_LAST), NULL);
    CHECK_STR(mj_phase_to_string(-1), NULL);
}

void test_enum_job_info_type(void)
{
    CHECK_INT(MJ_JOB_INFO_LAST, 6);
    for (int i = 0; i < MJ_JOB_INFO_LAST; i++) {
        const char *s = mj_job_info_type_to_string(i);
        CHECKF(s != NULL, "job info type %d has no string", i);
        if (s)
            CHECK_INT(mj_job_info_type_from_string(s), i);
        for (int j = 0; j < i; j++) {
            const char *t = mj_job_info_type_to_string(j);
            CHECKF(!s || !t || strcmp(s, t) != 0,
                   "types %d and %d share the string \"%s\"", i, j, s);
        }
    }
    CHECK_STR(mj_job_info_type_to_string(MJ_JOB_INFO_NONE), "none");
    CHECK_STR(mj_job_info_type_to_string(MJ_JOB_INFO_LAST), NULL);
    CHECK_STR(mj_job_info_type_to_string(-1), NULL);
    CHECK_INT(mj_job_info_type_from_string(NULL), -1);
    CHECK_INT(mj_job_info_type_from_string("bogus"), -1);
}

void test_async_job_phase_dispatch(void)
{
    /* migration jobs use the phase table */
    for (int p = 0; p < MJ_PHASE_LAST; p++) {
        CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_OUT, p),
                  mj_phase_to_string(p));
        CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_IN, p),
                  mj_phase_to_string(p));
    }
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_OUT, 3),
              "perform3");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_IN, 7),
              "prepare");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_OUT,
                                           MJ_PHASE_LAST), NULL);
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_IN, -1),
              NULL);
    /* every other async job only knows "none", whatever the phase */
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_NONE, 0), "none");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_NONE, 5), "none");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_SAVE, 3), "none");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_DUMP, 99), "none");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_SAVE, -1), "none");

    /* from string: NULL -> 0, unknown -> -1 */
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, NULL), 0);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, "none"), 0);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, "perform3"), 3);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, "preform2"), 1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_IN, "preform2"), 1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_IN, "finish3"), 9);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_IN, "Finish3"), -1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, "bogus"), -1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, ""), -1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_SAVE, "none"), 0);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_SAVE, NULL), 0);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_SAVE, "perform3"), -1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_DUMP, "preform2"), -1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_NONE, "none"), 0);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_NONE, "begin3"), -1);
}

void test_constants(void)
{
    CHECK_INT(MJ_JOB_QUERY, 1);
    CHECK_INT(MJ_JOB_ABORT, 5);
    CHECK_INT(MJ_JOB_MIGRATION_OP, 6);
    CHECK_INT(MJ_JOB_MODIFY_MIGRATION_SAFE, 7);
    CHECK_INT(MJ_JOB_ASYNC, 8);
    CHECK_INT(MJ_JOB_ASYNC_NESTED, 9);
    CHECK_INT(MJ_ASYNC_JOB_DUMP, 4);
    CHECK_INT(MJ_ASYNC_JOB_BACKUP, 7);
    CHECK_INT(MJ_PHASE_PREPARE, 7);
    CHECK_INT(MJ_PHASE_FINISH3, 9);
    CHECK_INT(MJ_PHASE_POSTCOPY_FAILED, 10);
    CHECK_INT(MJ_PHASE_FINISH_RESUME, 15);
    CHECK_INT(MJ_ERR_INTERNAL_ERROR, 1);
    CHECK_INT(MJ_ERR_OPERATION_FAILED, 9);
    CHECK_INT(MJ_ERR_INVALID_ARG, 8);
    CHECK_INT(MJ_ERR_NO_DOMAIN, 42);
    CHECK_INT(MJ_ERR_OPERATION_INVALID, 55);
    CHECK_INT(MJ_ERR_OPERATION_TIMEOUT, 68);
    CHECK_INT(MJ_ERR_OPERATION_ABORTED, 78);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_NONE), 0);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_QUERY), 0x01);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_DESTROY), 0x02);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_SUSPEND), 0x04);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_MODIFY), 0x08);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_ABORT), 0x10);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_MIGRATION_OP), 0x20);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_MODIFY_MIGRATION_SAFE), 0x40);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_ASYNC), 0x80);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_ASYNC_NESTED), 0x100);
    CHECK_HEX(MJ_DEFAULT_JOB_MASK, MJ_JOB_MASK(MJ_JOB_QUERY) |
              MJ_JOB_MASK(MJ_JOB_DESTROY) | MJ_JOB_MASK(MJ_JOB_ABORT));
    CHECK_HEX(MJ_MIGRATION_OUT_JOB_MASK, MJ_DEFAULT_JOB_MASK |
              MJ_JOB_MASK(MJ_JOB_SUSPEND) | MJ_JOB_MASK(MJ_JOB_MIGRATION_OP) |
              MJ_JOB_MASK(MJ_JOB_MODIFY_MIGRATION_SAFE));
    CHECK_HEX(MJ_MIGRATION_OUT_JOB_MASK, 0x77);
    CHECK_HEX(MJ_MIGRATION_IN_JOB_MASK, 0x42);
    CHECK_HEX(MJ_MIGRATION_OUT_RESTORED_JOB_MASK, 0x73);
    CHECK_HEX(MJ_BACKUP_JOB_MASK, 0x1f);
    CHECK_HEX(MJ_DESTROY_ONLY_JOB_MASK, 0x02);
    mj_noop();
    CHECK(1);
}

/* ======================================================================== */
/* errors                                                                   */

static void *dom_fresh_thread_error(void *arg)
{
    int *out = arg;
    out[0] = mj_last_error_code();
    out[1] = strcmp(mj_last_error_message(), "") == 0;
    return NULL;
}

static void *dom_set_error_in_thread(void *arg)
{
    mj_domain *d = arg;
    mj_end_job(d);      /* fails: no job; sets this thread's error only */
    return NULL;
}

void test_error_basics(void)
{
    int out[2] = { -1, -1 };
    pthread_t th;
    pthread_create(&th, NULL, dom_fresh_thread_error, out);
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
    pthread_create(&th, NULL, dom_set_error_in_thread, d);
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


/* ======================================================================== */
/* refcounts (docs/api.md: the seed's reference rules)                     */

void test_refs_basic(void)
{
    mj_domain *d = fresh("vm-ref", 1.0, 0, false);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK(mj_domain_alive(d));
    CHECK_INT(mj_domain_ref(d), 2);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_unref(d), 1);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, "dump", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_DUMP, "n", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    dispose(d);
}

/* ======================================================================== */
/* owners, job info                                                         */

static void *dom_start_phase_thread(void *arg)
{
    mj_domain *d = arg;
    uint64_t *out = malloc(2 * sizeof(*out));
    out[0] = (uint64_t)mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3,
                                                     "perform3");
    out[1] = mj_domain_async_owner_thread(d) == self_id();
    mj_migration_job_continue(d);
    return out;
}

void test_owners_and_info(void)
{
    mj_domain *d = fresh("vm-own", 1.0, 0, false);
    CHECK_INT(mj_domain_owner_thread(d), 0);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    CHECK_STR(mj_domain_async_owner_api(d), NULL);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_NONE);
    CHECK(mj_domain_job_elapsed(d) == 0.0);
    CHECK(!mj_domain_abort_requested(d));

    /* the API name is copied */
    char buf[32];
    snprintf(buf, sizeof(buf), "setMemory");
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, buf, 1.0, -1), 0);
    snprintf(buf, sizeof(buf), "XXXXXXXXX");
    CHECK_STR(mj_domain_owner_api(d), "setMemory");
    CHECK_INT(mj_domain_owner_thread(d), self_id());
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);
    /* the thread-local copy survives calls of other getters */
    const char *p = mj_domain_owner_api(d);
    (void)mj_domain_async_owner_api(d);
    CHECK_STR(p, "setMemory");
    CHECK_INT(mj_end_job(d), 1);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    CHECK_INT(mj_domain_owner_thread(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    /* NULL api: none recorded */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, NULL, 1.0, -1), 0);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    CHECK_INT(mj_domain_owner_thread(d), self_id());
    CHECK_INT(mj_end_job(d), 1);

    /* async owner */
    snprintf(buf, sizeof(buf), "begin3");
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, buf, 1.0,
                                     -1, false, 0), 0);
    snprintf(buf, sizeof(buf), "XXXXXX");
    CHECK_STR(mj_domain_async_owner_api(d), "begin3");
    CHECK_INT(mj_domain_async_owner_thread(d), self_id());
    CHECK_INT(mj_domain_owner_thread(d), 0);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    sleep_s(0.06);
    double el = mj_domain_job_elapsed(d);
    CHECK_RANGE(el, 0.05, 0.06 + SLACK);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                  1.0, -1), 0);
    CHECK_STR(mj_domain_owner_api(d), "monitor");
    CHECK_INT(mj_domain_owner_thread(d), self_id());
    CHECK_STR(mj_domain_async_owner_api(d), "begin3");
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, "begin3b"),
              MJ_PHASE_SET);
    CHECK_STR(mj_domain_async_owner_api(d), "begin3b");
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_STR(mj_domain_async_owner_api(d), "begin3b");
    CHECK(mj_domain_job_elapsed(d) >= el);

    /* another thread runs the next phase and becomes the owner */
    pthread_t th;
    void *res = NULL;
    pthread_create(&th, NULL, dom_start_phase_thread, d);
    pthread_join(th, &res);
    uint64_t *out = res;
    CHECK_INT(out[0], MJ_PHASE_SET);
    CHECK_INT(out[1], 1);
    free(out);
    CHECK_STR(mj_domain_async_owner_api(d), "perform3");
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_INT(mj_domain_refs(d), 1);
    /* this thread takes it back for the last phase */
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, "confirm3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_async_owner_thread(d), self_id());
    CHECK_STR(mj_domain_async_owner_api(d), "confirm3");
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_STR(mj_domain_async_owner_api(d), NULL);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_NONE);
    CHECK(mj_domain_job_elapsed(d) == 0.0);
    dispose(d);
}


/* ======================================================================== */
/* remove, pins                                                             */

void test_remove_fails_waiters(void)
{
    mj_domain *d = fresh("vm1", 10.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    worker ws[3];
    worker_init(&ws[0], d, W_SYNC, MJ_JOB_QUERY, "q", 10.0);
    worker_init(&ws[1], d, W_ASYNC, MJ_ASYNC_JOB_SAVE, "save", 10.0);
    worker_init(&ws[2], d, W_SYNC, MJ_JOB_DESTROY, "destroy", 10.0);
    for (int i = 0; i < 3; i++)
        worker_start_queued(&ws[i], 3 + i);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 10.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_refs(d), 6);
    double t0 = now_s();
    /* the failed waiters may give their references back before remove
     * drops the list's */
    CHECK_RANGE(mj_domain_remove(d), 1, 5);
    for (int i = 0; i < 3; i++) {
        worker_join(&ws[i]);
        CHECK_INT(ws[i].rc, -1);
        CHECK_INT(ws[i].err, MJ_ERR_NO_DOMAIN);
        CHECK_STR(ws[i].msg, "no domain with matching name 'vm1'");
    }
    CHECK_RANGE(now_s() - t0, 0.0, SLACK);
    {
        mj_reset_last_error();
        CHECK_INT(mj_pending_wait(1.0), -1);
        CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm1'");
    }
    CHECK_INT(mj_domain_refs(d), 1);    /* only the held job's */
    CHECK(mj_domain_alive(d));
    /* later begins fail; the held job still ends */
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm1'");
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, "d", 1.0, 0), -1);
    CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm1'");
    CHECK_INT(mj_domain_remove(d), -1);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);
    CHECK_INT(mj_end_job(d), 0);
    CHECK(!mj_domain_alive(d));
    CHECK_INT(mj_domain_refs(d), 0);
    CHECK_STR(mj_domain_name(d), "vm1");
    mj_domain_unpin(d);

    /* a pending waiter keeps the domain (and its memory) while the
     * creator lets go of everything */
    d = fresh("vm2", 10.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 10.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_remove(d), 2);
    CHECK_INT(mj_end_job(d), 1);
    mj_domain_unpin(d);        /* d must not be touched from here on */
    {
        CHECK_INT(mj_pending_wait(1.0), -1);
        CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm2'");
    }

    /* cancelling a waiter of a removed domain gives its reference back */
    d = fresh("vm3", 10.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 10.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_remove(d), 2);
    mj_pending_cancel();
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_end_job(d), 0);
    mj_domain_unpin(d);
}



typedef struct {
    mj_domain *d;
    atomic_int *go;
    atomic_int *ok;
} dom_pin_arg;

static void *dom_pin_reader(void *arg)
{
    dom_pin_arg *a = arg;
    /* the pin was taken for us by the creator before we started */
    while (!atomic_load(a->go))
        (void)mj_domain_refs(a->d);
    /* by now the domain is dead and the creator has unpinned it */
    int good = strcmp(mj_domain_name(a->d), "vm-pin") == 0 &&
               mj_domain_refs(a->d) == 0 && !mj_domain_alive(a->d) &&
               mj_begin_job(a->d, MJ_JOB_QUERY, "q", 1.0, -1) == -1 &&
               mj_last_error_code() == MJ_ERR_NO_DOMAIN;
    atomic_store(a->ok, good);
    mj_domain_unpin(a->d);
    return NULL;
}

static void dom_expect_no_domain(int rc, const char *what, const char *name)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "no domain with matching name '%s'", name);
    CHECKF(rc == -1, "%s on a dead domain returned %d", what, rc);
    CHECKF(mj_last_error_code() == MJ_ERR_NO_DOMAIN &&
           strcmp(mj_last_error_message(), msg) == 0,
           "%s on a dead domain: error %d \"%s\"", what, mj_last_error_code(),
           mj_last_error_message());
    mj_reset_last_error();
}

void test_pins_and_dead_domain(void)
{
    mj_domain *d = fresh("vm-dead", 1.0, 0, false);
    mj_domain_pin(d);
    CHECK_INT(mj_domain_refs(d), 1);   /* pins never show in refs */
    CHECK_INT(mj_domain_remove(d), 0);
    CHECK(!mj_domain_alive(d));
    CHECK_INT(mj_domain_refs(d), 0);
    mj_domain_unpin(d);
    /* still pinned once: every call is safe, every op fails NO_DOMAIN */
    CHECK_STR(mj_domain_name(d), "vm-dead");
    CHECK_INT(mj_domain_refs(d), 0);
    CHECK(!mj_domain_alive(d));
    mj_reset_last_error();
    dom_expect_no_domain(mj_domain_ref(d), "ref", "vm-dead");
    dom_expect_no_domain(mj_domain_unref(d), "unref", "vm-dead");
    dom_expect_no_domain(mj_domain_remove(d), "remove", "vm-dead");
    dom_expect_no_domain(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), "begin_job", "vm-dead");
    dom_expect_no_domain(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, 0), "sliced begin_job", "vm-dead");
    dom_expect_no_domain(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "s", 1.0, -1),
                         "begin_async_job", "vm-dead");
    dom_expect_no_domain(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "n", 1.0, -1),
                         "begin_nested_job", "vm-dead");
    dom_expect_no_domain(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "b",
                                                1.0, -1, false, 0),
                         "migration_job_start", "vm-dead");
    dom_expect_no_domain(mj_end_job(d), "end_job", "vm-dead");
    dom_expect_no_domain(mj_end_nested_job(d), "end_nested_job", "vm-dead");
    dom_expect_no_domain(mj_end_async_job(d), "end_async_job", "vm-dead");
    dom_expect_no_domain(mj_set_async_job_mask(d, 0), "set_async_job_mask", "vm-dead");
    dom_expect_no_domain(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL),
                         "migration_job_set_phase", "vm-dead");
    dom_expect_no_domain(mj_migration_job_start_phase(d, MJ_PHASE_BEGIN3, NULL),
                         "migration_job_start_phase", "vm-dead");
    dom_expect_no_domain(mj_migration_job_continue(d), "migration_job_continue", "vm-dead");
    dom_expect_no_domain(mj_migration_job_finish(d), "migration_job_finish", "vm-dead");
    dom_expect_no_domain(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT),
                         "check_migration_job", "vm-dead");
    dom_expect_no_domain(mj_abort_job(d, "a", 1.0, -1), "abort_job", "vm-dead");
    dom_expect_no_domain(mj_abort_apply(d), "abort_apply", "vm-dead");
    dom_expect_no_domain(mj_check_abort(d), "check_abort", "vm-dead");
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_OUT));
    /* each getter says it in one call: a sentinel and the NO_DOMAIN error */
    dom_expect_no_domain(mj_domain_active_job(d), "active_job", "vm-dead");
    dom_expect_no_domain(mj_domain_async_job(d), "async_job", "vm-dead");
    dom_expect_no_domain(mj_domain_phase(d), "phase", "vm-dead");
    dom_expect_no_domain(mj_domain_jobs_queued(d), "jobs_queued", "vm-dead");
    dom_expect_no_domain(mj_domain_job_info_type(d), "job_info_type", "vm-dead");
    dom_expect_no_domain((int)mj_domain_job_elapsed(d), "job_elapsed", "vm-dead");
    dom_expect_no_domain(mj_domain_abort_requested(d), "abort_requested", "vm-dead");
    dom_expect_no_domain(mj_domain_mask(d) == MJ_DEAD_U64 ? -1 : 0, "mask", "vm-dead");
    dom_expect_no_domain(mj_domain_owner_thread(d) == MJ_DEAD_U64 ? -1 : 0, "owner_thread",
                         "vm-dead");
    dom_expect_no_domain(mj_domain_async_owner_thread(d) == MJ_DEAD_U64 ? -1 : 0,
                         "async_owner_thread", "vm-dead");
    dom_expect_no_domain(mj_domain_owner_api(d) == NULL ? -1 : 0, "owner_api", "vm-dead");
    dom_expect_no_domain(mj_domain_async_owner_api(d) == NULL ? -1 : 0, "async_owner_api",
                         "vm-dead");
    mj_domain_cancel_waiters(d, "late");
    CHECK_INT(mj_domain_refs(d), 0);
    mj_domain_unpin(d);

    /* memory outlives refs while another thread holds a pin */
    d = fresh("vm-pin", 1.0, 0, false);
    atomic_int go, ok;
    atomic_init(&go, 0);
    atomic_init(&ok, 0);
    dom_pin_arg pa = { d, &go, &ok };
    pthread_t th;
    mj_domain_pin(d);
    pthread_create(&th, NULL, dom_pin_reader, &pa);
    CHECK_INT(mj_domain_remove(d), 0);
    mj_domain_unpin(d);
    atomic_store(&go, 1);
    pthread_join(th, NULL);
    CHECK_INT(atomic_load(&ok), 1);

    /* a blocking begin pins the domain: the creator may drop everything
     * while it waits (ASan checks the memory) */
    for (int i = 0; i < 40; i++) {
        d = fresh("vm-pinrace", 10.0, 0, false);
        CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
        worker w;
        worker_init(&w, d, W_SYNC, i % 2 ? MJ_JOB_QUERY : MJ_JOB_DESTROY,
                    "waiter", 10.0);
        worker_start_queued(&w, 3);
        CHECK_RANGE(mj_domain_remove(d), 1, 2);
        if (i % 3 == 0)
            sleep_s(0.001);
        mj_end_job(d);
        mj_domain_unpin(d);
        worker_join(&w);
        CHECK_INT(w.rc, -1);
        CHECK_INT(w.err, MJ_ERR_NO_DOMAIN);
    }
}

