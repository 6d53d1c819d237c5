/*
 * test_job.c: sync, async and nested begins and ends, masks,
 * jobs_queued and max_queued, timeouts and deadlines (the wake-ups and
 * FIFO order are test_wakeups.c's)
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

#include <stdlib.h>

/* ======================================================================== */
/* masks                                                                    */

/* begin `job` with a short timeout from this thread; true when granted
 * (and ended again) */
static bool job_try(mj_domain *d, int job, double timeout)
{
    if (mj_begin_job(d, job, "probe", timeout, -1) != 0)
        return false;
    mj_end_job(d);
    return true;
}

static void job_check_allowed_set(mj_domain *d, uint64_t allowed, const char *blocker)
{
    char expect[256];
    if (blocker)
        snprintf(expect, sizeof(expect),
                 "cannot acquire state change lock (held by monitor=%s)", blocker);
    else
        snprintf(expect, sizeof(expect), "cannot acquire state change lock");
    for (int j = MJ_JOB_QUERY; j <= MJ_JOB_MIGRATION_OP; j++) {
        int refs = mj_domain_refs(d);
        bool want = (allowed & MJ_JOB_MASK(j)) != 0;
        mj_reset_last_error();
        bool got = job_try(d, j, want ? 2.0 : 0.05);
        CHECKF(got == want, "job %s: expected %s under mask 0x%llx",
               mj_job_to_string(j), want ? "allowed" : "blocked",
               (unsigned long long)allowed);
        if (!want)
            CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT, expect);
        CHECK_INT(mj_domain_refs(d), refs);
    }
}

void test_masks(void)
{
    mj_domain *d = fresh("vm-mask", 1.0, 0, false);
    /* no async job: the default mask, and set_async_job_mask is a no-op */
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
    CHECK_INT(mj_set_async_job_mask(d, 0x08), 0);
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
    job_check_allowed_set(d, 0x3f, NULL);

    /* begin_async_job: default mask; job info follows the job data
     * (ACTIVE: UNBOUNDED, as libvirt 11's StatusToType) */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_UNBOUNDED);
    job_check_allowed_set(d, MJ_DEFAULT_JOB_MASK, "save");
    /* DESTROY is always added */
    CHECK_INT(mj_set_async_job_mask(d, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x02);
    job_check_allowed_set(d, 0x02, "save");
    CHECK_INT(mj_set_async_job_mask(d, MJ_JOB_MASK(MJ_JOB_MODIFY)), 0);
    CHECK_HEX(mj_domain_mask(d), 0x0a);
    job_check_allowed_set(d, 0x0a, "save");
    CHECK_INT(mj_set_async_job_mask(d, UINT64_MAX), 0);
    CHECK_HEX(mj_domain_mask(d), UINT64_MAX);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);

    /* migration_job_start: OUT 0x77, IN 0x42, SAVE/DUMP the OUT mask */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     1.0, -1, false, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x77);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_UNBOUNDED);
    job_check_allowed_set(d, 0x77, "begin3");
    /* parked: still enforced, and the blocker is still the last API */
    CHECK_INT(mj_migration_job_continue(d), 1);
    job_check_allowed_set(d, 0x77, "begin3");
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_NONE);

    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "prepare3",
                                     1.0, -1, false, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x42);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_UNBOUNDED);
    job_check_allowed_set(d, 0x42, "prepare3");
    CHECK_INT(mj_migration_job_finish(d), 1);

    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1,
                                     false, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x77);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_DUMP, "dump", 1.0, -1,
                                     false, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x77);
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* explicit masks, DESTROY still added */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "b", 1.0,
                                     -1, true, MJ_JOB_MASK(MJ_JOB_QUERY)), 0);
    CHECK_HEX(mj_domain_mask(d), 0x03);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "p", 1.0,
                                     -1, true, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x02);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "p", 1.0,
                                     -1, true, 0x39), 0);
    CHECK_HEX(mj_domain_mask(d), 0x3b);
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* an async begin while an async job is active waits for it to end and
     * names the async owner */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "perform3", 1.0, -1, false, 0), 0);
    mj_reset_last_error();
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=perform3)");
    /* a second migration fails at once (qemuMigrationJobIsAllowed) */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "x", 0.05,
                                     -1, false, 0), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "another migration job is already "
              "running for domain 'vm-mask'");
    /* a SAVE through migration_job_start still waits */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_SAVE, "x", 0.05,
                                     -1, false, 0), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=perform3)");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}


/* ======================================================================== */
/* jobs_queued and max_queued                                               */

void test_jobs_queued(void)
{
    mj_domain *d = fresh("vm-q", 1.0, 0, false);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "m", 1.0, -1), 0);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    /* a waiter counts (and holds a reference) */
    worker w;
    worker_init(&w, d, W_SYNC, MJ_JOB_QUERY, "q", 10.0);
    worker_start_queued(&w, 3);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    /* a failed begin gives both back */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "t", 0.02, -1), -1);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_domain_refs(d), 3);
    /* the waiter's reference stays unless it already ended its job: the
     * end gives its reference back after the hand-off */
    CHECK_RANGE(mj_end_job(d), 1, 2);
    worker_join(&w);
    CHECK_INT(w.rc, 0);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_refs(d), 1);

    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "s", 1.0, -1), 0);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "n", 1.0, -1), 0);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}

void test_max_queued(void)
{
    mj_domain *d = fresh("vm-mq", 1.0, 2, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q1", 1.0, -1), 0);
    worker w;
    worker_init(&w, d, W_SYNC, MJ_JOB_MODIFY, "m", 10.0);
    worker_start_queued(&w, 3);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    /* the third fails at once */
    double t0 = now_s();
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q3", 5.0, -1), -1);
    CHECK_RANGE(now_s() - t0, 0.0, 1.0);
    CHECK_ERR(MJ_ERR_OPERATION_FAILED,
              "cannot acquire state change lock (held by monitor=q1) due to "
              "max_queued limit");
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_domain_refs(d), 3);
    /* also for a sliced begin */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q3", 5.0, 0), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_FAILED);
    /* DESTROY and async begins are exempt: they wait (and time out) */
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_DESTROY, "destroy", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=q1)");
    mj_reset_last_error();
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, "dump", 0.05, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_RANGE(mj_end_job(d), 1, 2);
    worker_join(&w);
    CHECK_INT(w.rc, 0);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_refs(d), 1);
    /* once the queue drains, begins work again */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 0.02, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);
    CHECK_INT(mj_end_job(d), 1);

    /* a mask-blocked request names the async owner */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     1.0, -1, false, 0), 0);
    worker_init(&w, d, W_SYNC, MJ_JOB_MODIFY, "m", 10.0);
    worker_start_queued(&w, 3);
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "m2", 5.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_FAILED,
              "cannot acquire state change lock (held by monitor=begin3) due "
              "to max_queued limit");
    CHECK_RANGE(mj_migration_job_finish(d), 1, 2);
    worker_join(&w);
    CHECK_INT(w.rc, 0);
    CHECK_INT(w.seen_async, MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);
    dispose(d);

    /* max_queued = 1: an active async job makes its own nested job fail;
     * with no sync holder the text is bare */
    d = fresh("vm-mq1", 1.0, 1, false);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    mj_reset_last_error();
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "n", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_FAILED,
              "cannot acquire state change lock due to max_queued limit");
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_FAILED,
              "cannot acquire state change lock due to max_queued limit");
    /* DESTROY is exempt and allowed by every mask */
    CHECK_INT(mj_begin_job(d, MJ_JOB_DESTROY, "destroy", 1.0, -1), 0);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}

/* ======================================================================== */
/* timeouts                                                                 */

void test_timeouts(void)
{
    mj_domain *d = fresh("vm-t", 0.15, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "setMemory", 1.0, -1), 0);

    /* explicit timeout, the blocker named */
    double t0 = now_s();
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "stats", 0.1, -1), -1);
    double el = now_s() - t0;
    CHECK_RANGE(el, 0.095, 0.1 + SLACK);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=setMemory)");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);
    CHECK_STR(mj_domain_owner_api(d), "setMemory");

    /* negative timeout: the domain's default (0.15 s) */
    t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "stats", -1.0, -1), -1);
    CHECK_RANGE(now_s() - t0, 0.145, 0.15 + SLACK);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);

    /* zero: fail at once */
    t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "stats", 0.0, -1), -1);
    CHECK_RANGE(now_s() - t0, 0.0, 1.0);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);
    CHECK_INT(mj_end_job(d), 1);
    /* zero on a free slot succeeds */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "stats", 0.0, -1), 0);
    CHECK_INT(mj_end_job(d), 1);

    /* an async begin blocked only by the sync slot names the sync holder */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "setMemory", 1.0, -1), 0);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 0.03, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=setMemory)");
    CHECK_INT(mj_end_job(d), 1);

    /* no API name known: bare text */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, NULL, 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "stats", 0.03, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT, "cannot acquire state change lock");
    CHECK_INT(mj_end_job(d), 1);

    /* nested: the sync holder is named */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    worker w;
    atomic_int release;
    atomic_init(&release, 0);
    worker_init(&w, d, W_SYNC, MJ_JOB_QUERY, "blockStats", 1.0);
    w.release = &release;
    worker_start(&w);
    CHECK(wait_flag(&w.acquired, 5.0));
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "monitor", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=blockStats)");
    /* a job the mask allows but the slot blocks: the sync holder too */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=blockStats)");
    /* a job the mask forbids: the async owner */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "m", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=save)");
    atomic_store(&release, 1);
    worker_join(&w);
    CHECK_INT(w.rc, 0);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);

    /* default_timeout < 0 means 30 s: a 50 ms slice is still waiting */
    d = fresh("vm-t30", -1.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "m", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", -1.0, 0.05), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    mj_pending_cancel();
    CHECK_INT(mj_pending_count(), 0);
    CHECK_INT(mj_end_job(d), 1);
    dispose(d);
}

/* one deadline per begin covers every slice */
void test_deadline_across_slices(void)
{
    mj_domain *d = fresh("vm-dl", 5.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    double t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 0.3, 0.1), MJ_WAITING);
    CHECK_RANGE(now_s() - t0, 0.095, 0.1 + SLACK);
    CHECK_INT(mj_pending_count(), 1);
    {
        CHECK_INT(mj_pending_wait(0.1), MJ_WAITING);
        CHECK_INT(mj_domain_refs(d), 3);
        CHECK_INT(mj_domain_jobs_queued(d), 2);
        /* asking for 5 s more still ends at the begin's deadline */
        mj_reset_last_error();
        CHECK_INT(mj_pending_wait(5.0), -1);
        CHECK_RANGE(now_s() - t0, 0.295, 0.3 + SLACK);
        CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
                  "cannot acquire state change lock (held by monitor=holder)");
    }
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    /* wait_for < 0: until the deadline */
    t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 0.2, 0.05), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_pending_wait(-1), -1);
    CHECK_RANGE(now_s() - t0, 0.195, 0.2 + SLACK);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);
    CHECK_INT(mj_end_job(d), 1);
    dispose(d);
}
