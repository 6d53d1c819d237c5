/*
 * test_enums.c: the enum tables and their strings, the phase dispatch, the
 * constants
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

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
