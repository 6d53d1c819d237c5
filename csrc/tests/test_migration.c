/*
 * test_migration.c: the seed's migration helpers (start, set_phase,
 * start_phase, continue, finish, check), phases, claim_parked, abort (their
 * refcounts are test_migration_refs.c's)
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"


/* ======================================================================== */
/* check_migration_job, phases                                              */

void test_error_check_migration(void)
{
    mj_domain *d = fresh("vm1", 1.0, 0, false);
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm1' is not being migrated");
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_IN), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID,
              "domain 'vm1' is not processing incoming migration");
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_SAVE), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm1' is not being migrated");
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_DUMP), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm1' is not being migrated");

    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     1.0, -1, false, 0), 0);
    mj_reset_last_error();
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT), 0);
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_IN), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID,
              "domain 'vm1' is not processing incoming migration");
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_SAVE), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm1' is not being migrated");

    /* is_active compares exactly and never sets an error */
    mj_reset_last_error();
    CHECK(mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_OUT));
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_IN));
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_SAVE));
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_NONE));
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_OUT));
    CHECK_ERR(MJ_ERR_OK, "");

    /* SAVE matches SAVE */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    CHECK(mj_migration_job_is_active(d, MJ_ASYNC_JOB_SAVE));
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_SAVE), 0);
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_DUMP), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm1' is not being migrated");
    CHECK_INT(mj_end_async_job(d), 1);
    dispose(d);
}

void test_phases(void)
{
    mj_domain *d = fresh("vm-ph", 1.0, 0, false);
    /* no async job: silent no-op */
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, "x"), MJ_PHASE_NO_JOB);
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_NONE);
    CHECK_STR(mj_domain_async_owner_api(d), NULL);
    CHECK_INT(mj_domain_refs(d), 1);

    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_NONE);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_BEGIN3);
    /* equal is accepted */
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3, "perform3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PERFORM3);
    CHECK_STR(mj_domain_async_owner_api(d), "perform3");
    /* backwards: refused, logged as the last error, job goes on */
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL),
              MJ_PHASE_BACKWARDS);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards perform3 => begin3");
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PERFORM3);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_MIGRATION_OUT);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_NONE, NULL),
              MJ_PHASE_BACKWARDS);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards perform3 => none");
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_CONFIRM3, NULL), MJ_PHASE_SET);
    /* CONFIRM3_CANCELLED (5) < CONFIRM3 (6) */
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_CONFIRM3_CANCELLED, NULL),
              MJ_PHASE_BACKWARDS);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards confirm3 => confirm3_cancelled");
    /* plain integer order: destination phases sort after source ones */
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PREPARE, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PREPARE);
    /* invalid phases */
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_LAST, NULL), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    CHECK_INT(mj_migration_job_set_phase(d, -1, NULL), -1);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PREPARE);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    /* ending the async job resets the phase */
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_NONE);
    CHECK_STR(mj_domain_async_owner_api(d), NULL);
    dispose(d);

    /* strict: backwards is an error */
    d = fresh("vm-strict", 1.0, 0, true);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "prepare3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_FINISH3, NULL), MJ_PHASE_SET);
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PREPARE, NULL), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards finish3 => prepare");
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_FINISH3);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_FINISH3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

/* ======================================================================== */
/* claim_parked: a close callback's way into a parked migration              */

typedef struct {
    mj_domain *d;
    int async_job, phase, new_phase;
    const char *api;
    int rc;
    uint64_t thread;    /* the claiming thread */
} mig_claim_arg;

static void *mig_claim_main(void *arg)
{
    mig_claim_arg *a = arg;
    a->thread = self_id();
    a->rc = mj_migration_job_claim_parked(a->d, a->async_job, a->phase,
                                          a->new_phase, a->api);
    return NULL;
}

/* claim_parked from a new thread (the close callback's), joined; its
 * result, and its thread id in *thread */
static int mig_claim_elsewhere(mj_domain *d, int async_job, int phase,
                               int new_phase, const char *api,
                               uint64_t *thread)
{
    mig_claim_arg a = { d, async_job, phase, new_phase, api, -99, 0 };
    pthread_t th;
    pthread_create(&th, NULL, mig_claim_main, &a);
    pthread_join(th, NULL);
    if (thread)
        *thread = a.thread;
    return a.rc;
}

/* the async job is exactly as it was: phase, owner thread and API, refs */
static void mig_check_unclaimed(mj_domain *d, int phase, uint64_t owner,
                                const char *api, int refs, const char *when)
{
    CHECKF(mj_domain_phase(d) == phase, "%s: phase %d, expected %d", when,
           mj_domain_phase(d), phase);
    CHECKF(mj_domain_async_owner_thread(d) == owner,
           "%s: the async owner thread changed", when);
    CHECKF(mj_domain_async_owner_api(d) &&
           strcmp(mj_domain_async_owner_api(d), api) == 0,
           "%s: async owner API \"%s\", expected \"%s\"", when,
           mj_domain_async_owner_api(d) ? mj_domain_async_owner_api(d)
                                        : "NULL", api);
    CHECKF(mj_domain_refs(d) == refs, "%s: refs %d, expected %d", when,
           mj_domain_refs(d), refs);
}

void test_claim_parked(void)
{
    mj_domain *d = fresh("vm-claim", 1.0, 0, false);
    /* bad arguments: -1 INVALID_ARG, before anything is looked at */
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_claim_parked(d, -1, MJ_PHASE_PERFORM3,
                                            MJ_PHASE_CONFIRM3, NULL), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_claim_parked(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                            MJ_PHASE_LAST, MJ_PHASE_CONFIRM3,
                                            NULL), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_claim_parked(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                            MJ_PHASE_PERFORM3, MJ_PHASE_LAST,
                                            NULL), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    /* no async job: nothing to claim */
    CHECK_INT(mj_migration_job_claim_parked(d, MJ_ASYNC_JOB_NONE,
                                            MJ_PHASE_NONE, MJ_PHASE_NONE,
                                            NULL), 0);
    CHECK_INT(mj_migration_job_claim_parked(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                            MJ_PHASE_NONE, MJ_PHASE_CONFIRM3,
                                            NULL), 0);
    CHECK_INT(mj_domain_refs(d), 1);

    /* parked in perform3 */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3, "perform3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 1);
    /* not as seen: another async job, another phase, or backwards */
    uint64_t t;
    CHECK_INT(mig_claim_elsewhere(d, MJ_ASYNC_JOB_MIGRATION_IN,
                                  MJ_PHASE_PERFORM3, MJ_PHASE_CONFIRM3,
                                  "cb", &t), 0);
    CHECK_INT(mig_claim_elsewhere(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                  MJ_PHASE_BEGIN3, MJ_PHASE_CONFIRM3,
                                  "cb", &t), 0);
    CHECK_INT(mig_claim_elsewhere(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                  MJ_PHASE_PERFORM3, MJ_PHASE_BEGIN3,
                                  "cb", &t), 0);
    mig_check_unclaimed(d, MJ_PHASE_PERFORM3, 0, "perform3", 1, "refused");
    /* as seen: StartPhase's effect, the claimer owns it */
    CHECK_INT(mig_claim_elsewhere(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                  MJ_PHASE_PERFORM3, MJ_PHASE_CONFIRM3_CANCELLED,
                                  "close-cb", &t), 1);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_CONFIRM3_CANCELLED);
    CHECK_INT(mj_domain_async_owner_thread(d), t);
    CHECK_STR(mj_domain_async_owner_api(d), "close-cb");
    CHECK_INT(mj_domain_refs(d), 2);
    /* claimed: no longer parked, a second claim gets nothing */
    CHECK_INT(mig_claim_elsewhere(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                  MJ_PHASE_CONFIRM3_CANCELLED,
                                  MJ_PHASE_CONFIRM3_CANCELLED, "again", NULL),
              0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    /* a dead domain */
    CHECK_INT(mj_domain_remove(d), 0);
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_claim_parked(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                            MJ_PHASE_PERFORM3,
                                            MJ_PHASE_CONFIRM3, NULL), -1);
    CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm-claim'");
    mj_domain_unpin(d);
}

/* A migration some thread still drives (started or resumed, not yet
 * continued) is not parked, whatever its job and phase: claim_parked must
 * return 0 and change neither phase, owner thread, owner API nor refs. */
void test_claim_parked_not_while_driven(void)
{
    mj_domain *d = fresh("vm-driven", 1.0, 0, false);
    uint64_t t;
    /* started by this thread, in perform3, never continued */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "perform3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3, "perform3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_async_owner_thread(d), self_id());
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mig_claim_elsewhere(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                  MJ_PHASE_PERFORM3, MJ_PHASE_CONFIRM3,
                                  "close-cb", &t), 0);
    mig_check_unclaimed(d, MJ_PHASE_PERFORM3, self_id(), "perform3", 2,
                        "started, claimed from another thread");
    /* nor by the driving thread itself */
    CHECK_INT(mj_migration_job_claim_parked(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                            MJ_PHASE_PERFORM3,
                                            MJ_PHASE_CONFIRM3, "close-cb"), 0);
    mig_check_unclaimed(d, MJ_PHASE_PERFORM3, self_id(), "perform3", 2,
                        "started, claimed by its own thread");

    /* parked, then resumed by the next API (StartPhase): driven again */
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3_DONE,
                                           "perform3-done"), MJ_PHASE_SET);
    CHECK_INT(mig_claim_elsewhere(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                  MJ_PHASE_PERFORM3_DONE, MJ_PHASE_CONFIRM3,
                                  "close-cb", &t), 0);
    mig_check_unclaimed(d, MJ_PHASE_PERFORM3_DONE, self_id(), "perform3-done",
                        2, "resumed, claimed from another thread");

    /* once continued it is parked, and the same claim succeeds */
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mig_claim_elsewhere(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                  MJ_PHASE_PERFORM3_DONE, MJ_PHASE_CONFIRM3,
                                  "close-cb", &t), 1);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_CONFIRM3);
    CHECK_INT(mj_domain_async_owner_thread(d), t);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

/* ======================================================================== */
/* abort                                                                    */

void test_abort(void)
{
    mj_domain *d = fresh("vm-abort", 1.0, 0, false);
    /* nothing to abort: the ABORT job is ended again */
    CHECK_INT(mj_abort_job(d, "abort", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_check_abort(d), 0);

    static const int kinds[] = { MJ_ASYNC_JOB_MIGRATION_OUT, MJ_ASYNC_JOB_SAVE,
                                 MJ_ASYNC_JOB_DUMP };
    for (int i = 0; i < 3; i++) {
        char expect[128];
        snprintf(expect, sizeof(expect), "%s: canceled by client",
                 async_job_label(kinds[i]));
        CHECK_INT(mj_migration_job_start(d, kinds[i], "job", 1.0, -1, false, 0), 0);
        CHECK(!mj_domain_abort_requested(d));
        CHECK_INT(mj_check_abort(d), 0);
        CHECK_INT(mj_abort_job(d, "abort", 1.0, -1), 0);
        CHECK(mj_domain_abort_requested(d));
        CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
        CHECK_INT(mj_domain_refs(d), 2);
        CHECK_INT(mj_domain_jobs_queued(d), 1);
        mj_reset_last_error();
        CHECK_INT(mj_check_abort(d), -1);
        CHECK_ERR(MJ_ERR_OPERATION_ABORTED, expect);
        CHECK_INT(mj_migration_job_finish(d), 1);
        CHECK(!mj_domain_abort_requested(d));
        CHECK_INT(mj_check_abort(d), 0);
    }
    /* begin_async_job's default mask lets ABORT through too */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    CHECK_INT(mj_abort_job(d, NULL, 1.0, -1), 0);
    CHECK_INT(mj_check_abort(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "save: canceled by client");
    CHECK_INT(mj_end_async_job(d), 1);

    /* incoming migration: the mask blocks ABORT; once allowed, refused */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "prepare3",
                                     1.0, -1, false, 0), 0);
    mj_reset_last_error();
    CHECK_INT(mj_abort_job(d, "abort", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=prepare3)");
    CHECK_INT(mj_set_async_job_mask(d, MJ_JOB_MASK(MJ_JOB_ABORT)), 0);
    mj_reset_last_error();
    CHECK_INT(mj_abort_job(d, "abort", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID,
              "cannot abort incoming migration; use virDomainDestroy instead");
    CHECK(!mj_domain_abort_requested(d));
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* the body alone, for a caller holding the ABORT job */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "p", 1.0,
                                     -1, false, 0), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_ABORT, "abort", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_abort_apply(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK(mj_domain_abort_requested(d));
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_begin_job(d, MJ_JOB_ABORT, "abort", 1.0, -1), 0);
    CHECK_INT(mj_abort_apply(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);

    /* wait_for = 0 on a free slot applies at once */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "p", 1.0,
                                     -1, false, 0), 0);
    CHECK_INT(mj_abort_job(d, "abort", 1.0, 0), 0);
    CHECK(mj_domain_abort_requested(d));
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* from another thread, during the owner's nested job: waits for the
     * sync slot like any ABORT job */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "perform3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                  1.0, -1), 0);
    worker w;
    worker_init(&w, d, W_ABORT, 0, "abortJob", 10.0);
    worker_start_queued(&w, 4);
    sleep_s(0.02);
    CHECK(!atomic_load(&w.done));
    CHECK(!mj_domain_abort_requested(d));
    CHECK_RANGE(mj_end_nested_job(d), 2, 3);
    worker_join(&w);
    CHECK_INT(w.rc, 0);
    CHECK(mj_domain_abort_requested(d));
    CHECK_INT(mj_check_abort(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "migration out: canceled by client");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

