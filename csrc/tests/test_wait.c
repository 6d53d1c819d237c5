/*
 * test_wait.c: sliced begins (MJ_WAITING) and the per-thread
 * pending waits, edge cases (cancelling is test_cancel.c's)
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

#include <stdlib.h>

/* ======================================================================== */
/* sliced waits and the pending-waiter stack                                */

void test_sliced_waits(void)
{
    mj_domain *d = fresh("vm-sl", 5.0, 0, false);

    /* free slot: granted at once */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 5.0, 0), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_INT(mj_end_job(d), 1);

    /* busy: MJ_WAITING keeps the place, reference and queue slot */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    double t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "sliced", 5.0, 0), MJ_WAITING);
    CHECK_RANGE(now_s() - t0, 0.0, 1.0);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    {
        t0 = now_s();
        CHECK_INT(mj_pending_wait(0.05), MJ_WAITING);
        CHECK_RANGE(now_s() - t0, 0.045, 0.05 + SLACK);
        CHECK_INT(mj_pending_wait(0), MJ_WAITING);
        mj_pending_cancel();
    }
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);
    CHECK_STR(mj_domain_owner_api(d), "holder");
    CHECK_INT(mj_end_job(d), 1);

    /* granted through mj_pending_wait */
    atomic_int rel;
    atomic_init(&rel, 0);
    worker h;
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 5.0, 0.01), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    atomic_store(&rel, 1);
    CHECK_INT(mj_pending_wait(-1), 0);
    worker_join(&h);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_INT(mj_domain_owner_thread(d), self_id());
    CHECK_STR(mj_domain_owner_api(d), "sliced");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);

    /* cancel after the grant: the job is ended again and the next waiter
     * gets it */
    atomic_store(&rel, 0);
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "sliced", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    worker next;
    worker_init(&next, d, W_SYNC, MJ_JOB_MODIFY, "next", 10.0);
    worker_start_queued(&next, 4);
    atomic_store(&rel, 1);
    worker_join(&h);
    /* the slot was handed to our waiter, which nobody is waiting on */
    double end = now_s() + SLACK;
    while (mj_domain_active_job(d) != MJ_JOB_MODIFY && now_s() < end)
        sleep_s(0.001);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);
    sleep_s(0.03);
    CHECK(!atomic_load(&next.acquired));
    CHECK_INT(mj_domain_refs(d), 3);
    mj_pending_cancel();
    worker_join(&next);
    CHECK_INT(next.rc, 0);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);

    /* wait_for > 0 that is granted within the slice */
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.hold = 0.1;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 5.0, 3.0), 0);
    CHECK_RANGE(now_s() - t0, 0.0, 0.1 + SLACK);
    worker_join(&h);
    CHECK_INT(mj_end_job(d), 1);

    /* async, migration start and nested begins slice the same way */
    atomic_store(&rel, 0);
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    atomic_store(&rel, 1);
    CHECK_INT(mj_pending_wait(5.0), 0);
    worker_join(&h);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_SAVE);
    CHECK_INT(mj_domain_async_owner_thread(d), self_id());
    CHECK_STR(mj_domain_async_owner_api(d), "save");
    CHECK_INT(mj_end_async_job(d), 1);

    atomic_store(&rel, 0);
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     5.0, 0, false, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    atomic_store(&rel, 1);
    CHECK_INT(mj_pending_wait(5.0), 0);
    worker_join(&h);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_MIGRATION_OUT);
    CHECK_HEX(mj_domain_mask(d), 0x77);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_UNBOUNDED);

    atomic_store(&rel, 0);
    worker_init(&h, d, W_SYNC, MJ_JOB_QUERY, "stats", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                  5.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    atomic_store(&rel, 1);
    CHECK_INT(mj_pending_wait(5.0), 0);
    worker_join(&h);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_ASYNC_NESTED);
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* cancelling a granted async begin ends the async job */
    atomic_store(&rel, 0);
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "prepare",
                                     5.0, 0, false, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    atomic_store(&rel, 1);
    worker_join(&h);
    end = now_s() + SLACK;
    while (mj_domain_async_job(d) == MJ_ASYNC_JOB_NONE && now_s() < end)
        sleep_s(0.001);
    mj_pending_cancel();
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
    dispose(d);
}

/* the pending-waiter stack is per thread, innermost first */
static void *wait_pending_count_thread(void *arg)
{
    int *out = arg;
    *out = mj_pending_count();
    return NULL;
}

void test_pending_stack(void)
{
    mj_domain *d1 = fresh("vm-ps1", 5.0, 0, false);
    mj_domain *d2 = fresh("vm-ps2", 5.0, 0, false);

    /* nothing pending */
    CHECK_INT(mj_pending_count(), 0);
    mj_reset_last_error();
    CHECK_INT(mj_pending_wait(0.01), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INTERNAL_ERROR);
    mj_pending_cancel();                       /* a no-op */
    CHECK_INT(mj_pending_count(), 0);

    atomic_int rel1, rel2;
    atomic_init(&rel1, 0);
    atomic_init(&rel2, 0);
    worker h1, h2;
    worker_init(&h1, d1, W_SYNC, MJ_JOB_MODIFY, "h1", 1.0);
    h1.release = &rel1;
    worker_init(&h2, d2, W_SYNC, MJ_JOB_MODIFY, "h2", 1.0);
    h2.release = &rel2;
    worker_start(&h1);
    worker_start(&h2);
    CHECK(wait_flag(&h1.acquired, SLACK));
    CHECK(wait_flag(&h2.acquired, SLACK));

    CHECK_INT(mj_begin_job(d1, MJ_JOB_QUERY, "outer", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_begin_async_job(d2, MJ_ASYNC_JOB_SAVE, "inner", 5.0, 0),
              MJ_WAITING);
    CHECK_INT(mj_pending_count(), 2);
    /* another thread has none */
    int other = -1;
    pthread_t th;
    pthread_create(&th, NULL, wait_pending_count_thread, &other);
    pthread_join(th, NULL);
    CHECK_INT(other, 0);
    /* a begin that fails, or succeeds at once, leaves the stack alone */
    CHECK_INT(mj_begin_job(d1, MJ_JOB_MODIFY, "x", 0.0, 0.0), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);
    CHECK_INT(mj_pending_count(), 2);
    mj_domain *d3 = fresh("vm-ps3", 5.0, 0, false);
    CHECK_INT(mj_begin_job(d3, MJ_JOB_QUERY, "x", 1.0, 0), 0);
    CHECK_INT(mj_end_job(d3), 1);
    dispose(d3);
    CHECK_INT(mj_pending_count(), 2);

    /* the innermost (d2's async begin) is resumed first */
    CHECK_INT(mj_pending_wait(0.02), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 2);
    atomic_store(&rel2, 1);
    worker_join(&h2);
    CHECK_INT(mj_pending_wait(5.0), 0);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_async_job(d2), MJ_ASYNC_JOB_SAVE);
    CHECK_INT(mj_domain_async_owner_thread(d2), self_id());
    CHECK_INT(mj_domain_active_job(d1), MJ_JOB_MODIFY);   /* still h1's */
    CHECK_INT(mj_domain_refs(d1), 3);
    /* then the outer one: cancel it */
    mj_pending_cancel();
    CHECK_INT(mj_pending_count(), 0);
    CHECK_INT(mj_domain_refs(d1), 2);
    CHECK_INT(mj_domain_jobs_queued(d1), 1);
    atomic_store(&rel1, 1);
    worker_join(&h1);
    CHECK_INT(mj_domain_refs(d1), 1);
    CHECK_INT(mj_domain_active_job(d1), MJ_JOB_NONE);
    CHECK_INT(mj_end_async_job(d2), 1);

    /* the waiter's owner is the thread that began it */
    CHECK_INT(mj_begin_job(d1, MJ_JOB_MODIFY, "hold", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d1, MJ_JOB_MODIFY, "inner", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_end_job(d1), 2);      /* hands the slot to our own waiter */
    CHECK_INT(mj_domain_active_job(d1), MJ_JOB_MODIFY);
    CHECK_INT(mj_pending_wait(0), 0);
    CHECK_STR(mj_domain_owner_api(d1), "inner");
    CHECK_INT(mj_domain_owner_thread(d1), self_id());
    CHECK_INT(mj_end_job(d1), 1);
    CHECK_INT(mj_pending_count(), 0);
    dispose(d1);
    dispose(d2);
}


/* ======================================================================== */
/* edge cases                                                               */

void test_edge_cases(void)
{
    /* cancel_waiters: NULL reason, a reason too long to keep; a void call
     * that succeeds must not touch the last error */
    mj_domain *d = fresh("vm-edge", 5.0, 0, false);
    mj_reset_last_error();
    mj_domain_cancel_waiters(d, NULL);
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    dispose(d);

    d = fresh("vm-edge2", 5.0, 0, false);
    char *longreason = malloc(MJ_NAME_MAX + 100);
    memset(longreason, 'r', MJ_NAME_MAX + 99);
    longreason[MJ_NAME_MAX + 99] = '\0';
    mj_reset_last_error();
    mj_domain_cancel_waiters(d, longreason);
    CHECKF(mj_last_error_code() == MJ_ERR_OK,
           "cancel_waiters with a %d-byte reason left the last error %d \"%s\"",
           MJ_NAME_MAX + 99, mj_last_error_code(), mj_last_error_message());
    free(longreason);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_ABORTED);
    CHECK(strncmp(mj_last_error_message(), "job wait cancelled: ", 20) == 0);
    dispose(d);

    /* cancel_waiters on one domain leaves another alone */
    mj_domain *a = fresh("vm-edge-a", 5.0, 0, false);
    mj_domain *b = fresh("vm-edge-b", 5.0, 0, false);
    mj_domain_cancel_waiters(a, "a only");
    CHECK_INT(mj_begin_job(b, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    CHECK_INT(mj_end_job(b), 1);
    dispose(a);
    dispose(b);

    /* NaN wait_for on the pending wait: refused, the waiter stays */
    d = fresh("vm-edge3", 5.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 5.0, 0), MJ_WAITING);
    mj_reset_last_error();
    CHECK_INT(mj_pending_wait(0.0 / 0.0), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_refs(d), 3);
    mj_pending_cancel();
    CHECK_INT(mj_domain_refs(d), 2);

    /* an infinite timeout is a deadline that never comes */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0 / 0.0, 0.01), MJ_WAITING);
    CHECK_INT(mj_pending_wait(0.01), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    mj_pending_cancel();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1e300, 0.0), MJ_WAITING);
    mj_pending_cancel();
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);

    /* abort through a sliced wait: the grant applies the abort inside
     * mj_pending_wait, so the caller never holds the ABORT job */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "perform3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "m", 1.0, -1), 0);
    CHECK_INT(mj_abort_job(d, "abort", 5.0, 0), MJ_WAITING);
    CHECK(!mj_domain_abort_requested(d));
    CHECK_INT(mj_end_nested_job(d), 3);
    CHECK_INT(mj_pending_wait(1.0), 0);
    CHECK(mj_domain_abort_requested(d));
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 2);
    /* abort_apply without holding the ABORT job changes nothing */
    CHECK_INT(mj_abort_apply(d), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_INVALID);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);

    /* strict phases: a refused StartPhase still took its reference */
    d = fresh("vm-edge4", 5.0, 0, true);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "b", 1.0,
                                     -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_BEGIN3, NULL), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards perform3 => begin3");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PERFORM3);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}
