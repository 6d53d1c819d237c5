/*
 * test_migration_refs.c: the refcounts of the seed's migration helpers
 * (v3 with and without change protection, the destination, v2 and
 * peer-to-peer), refused phase changes, a domain that disappears
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

/* ======================================================================== */
/* refcounts of the migration helpers (docs/api.md: the seed's rules)      */

/* Source v3 with change protection: Begin3 1->2->1, Perform3 1->2 [nested
 * +1/-1] ->1, Confirm3 1->2->1; a transient domain is then removed 1->0. */
void test_refs_v3_change_protection(void)
{
    mj_domain *d = fresh("vm-src", 1.0, 0, false);
    /* Begin3 */
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "begin3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_HEX(mj_domain_mask(d), 0x77);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_UNBOUNDED);
    CHECK_INT(mj_domain_async_owner_thread(d), self_id());
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_STR(mj_domain_async_owner_api(d), "begin3");
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_MIGRATION_OUT);
    CHECK_INT(mj_domain_jobs_queued(d), 1);     /* parked async counts */

    /* Perform3 */
    CHECK(mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_OUT));
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT), 0);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3, "perform3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_async_owner_thread(d), self_id());
    CHECK_STR(mj_domain_async_owner_api(d), "perform3");
    for (int i = 0; i < 3; i++) {
        CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                      "monitor", 1.0, -1), 0);
        CHECK_INT(mj_domain_refs(d), 3);
        CHECK_INT(mj_end_nested_job(d), 2);
    }
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3_DONE, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_continue(d), 1);

    /* Confirm3 */
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT), 0);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, "confirm3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_CONFIRM3);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_NONE);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_NONE);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_STR(mj_domain_async_owner_api(d), NULL);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
    /* transient: removed after success, 1 -> 0 */
    CHECK_INT(mj_domain_remove(d), 0);
    CHECK(!mj_domain_alive(d));
    CHECK_INT(mj_domain_refs(d), 0);
    mj_domain_unpin(d);
}

/* Destination: Prepare 1->2->1; Finish3 1->2->1. */
void test_refs_destination(void)
{
    mj_domain *d = fresh("vm-dst", 1.0, 0, false);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN,
                                     "prepare3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_HEX(mj_domain_mask(d), 0x42);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PREPARE, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_OUT));
    CHECK(mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_IN));
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_FINISH3, "finish3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    /* v2 destination: Prepare2 / Finish2 */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN,
                                     "prepare2", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PREPARE, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_FINISH2, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

/* v3 without change protection: Begin3 is a sync MODIFY 1->2->1; Perform3
 * calls Start and StartPhase but only Continue: 1->3->2; Confirm3 2->3->2. */
void test_refs_v3_no_change_protection(void)
{
    mj_domain *d = fresh("vm-noprot", 1.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "begin3", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);
    /* Perform3 */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "perform3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3_DONE, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 2);
    CHECK_INT(mj_domain_refs(d), 2);
    /* Confirm3 */
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT), 0);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3_CANCELLED, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_migration_job_finish(d), 2);
    CHECK_INT(mj_domain_refs(d), 2);         /* the leaked reference */
    /* removing the domain leaves it alive on the leaked reference */
    CHECK_INT(mj_domain_remove(d), 1);
    CHECK(mj_domain_alive(d));
    CHECK_INT(mj_domain_unref(d), 0);
    CHECK(!mj_domain_alive(d));
    mj_domain_unpin(d);
}

/* v2 source and peer-to-peer source: one call from Start to Finish */
void test_refs_v2_and_p2p(void)
{
    mj_domain *d = fresh("vm-v2", 1.0, 0, false);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "perform", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM2, NULL), MJ_PHASE_SET);
    CHECK_STR(mj_async_job_phase_to_string(mj_domain_async_job(d),
                                           mj_domain_phase(d)), "perform2");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);

    static const int p2p[] = { MJ_PHASE_BEGIN3, MJ_PHASE_PERFORM3,
                               MJ_PHASE_PERFORM3_DONE, MJ_PHASE_CONFIRM3 };
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "perform", 1.0, -1, false, 0), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(mj_migration_job_set_phase(d, p2p[i], NULL), MJ_PHASE_SET);
        CHECK_INT(mj_domain_refs(d), 2);
    }
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

void test_refs_start_phase_refused(void)
{
    mj_domain *d = fresh("vm-refused", 1.0, 0, false);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "begin3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 1);
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_BEGIN3, NULL),
              MJ_PHASE_BACKWARDS);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards perform3 => begin3");
    CHECK_INT(mj_domain_refs(d), 2);      /* +1 even when refused */
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PERFORM3);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);  /* a refusal changes nothing */
    CHECK_INT(mj_migration_job_continue(d), 1);
    /* the next API: StartPhase 1->2, Finish 2->1 */
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* StartPhase without any async job: +1 and nothing else (the seed
     * refs before SetPhase, which is a no-op without a job) */
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3, NULL),
              MJ_PHASE_NO_JOB);
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_NONE);
    CHECK_INT(mj_migration_job_continue(d), 1);
    dispose(d);
}

/* A refused (backwards) phase changes nothing but StartPhase's reference:
 * the seed's qemuMigrationJobSetPhase "returns without changing anything";
 * 0.10.2 and modern libvirt check the phase before touching the owner. */
static void migrefs_refused_phase_case(bool strict, bool start)
{
    mj_domain *d = fresh(strict ? "vm-refs" : "vm-ref", 1.0, 0, strict);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3, "perform3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 1);      /* parked */
    int rc = start ? mj_migration_job_start_phase(d, MJ_PHASE_BEGIN3, "intruder")
                   : mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, "intruder");
    CHECK_INT(rc, strict ? -1 : MJ_PHASE_BACKWARDS);
    CHECKF(mj_domain_async_owner_api(d) &&
           strcmp(mj_domain_async_owner_api(d), "perform3") == 0,
           "%s %s: refused phase changed async_owner_api to \"%s\"",
           strict ? "strict" : "default", start ? "start_phase" : "set_phase",
           mj_domain_async_owner_api(d) ? mj_domain_async_owner_api(d) : "NULL");
    CHECKF(mj_domain_async_owner_thread(d) == 0,
           "%s %s: refused phase made the caller the async owner thread",
           strict ? "strict" : "default", start ? "start_phase" : "set_phase");
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PERFORM3);
    CHECK_INT(mj_domain_refs(d), start ? 2 : 1);
    if (start)
        mj_migration_job_continue(d);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

void test_refused_phase_changes_no_owner(void)
{
    migrefs_refused_phase_case(false, false);
    migrefs_refused_phase_case(false, true);
    migrefs_refused_phase_case(true, false);
    migrefs_refused_phase_case(true, true);
}

/* Continue returning 0: a transient domain removed while parked dies with
 * the last API's reference ("domain disappeared" in libvirt). */
void test_refs_domain_disappeared(void)
{
    mj_domain *d = fresh("vm-gone", 1.0, 0, false);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "begin3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_remove(d), 1);
    CHECK(mj_domain_alive(d));
    CHECK_INT(mj_migration_job_continue(d), 0);
    CHECK(!mj_domain_alive(d));
    CHECK_INT(mj_domain_refs(d), 0);
    CHECK_STR(mj_domain_name(d), "vm-gone");
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3, NULL), -1);
    CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm-gone'");
    mj_domain_unpin(d);
}
