/*
 * test_cancel.c: cancelling: cancel_waiters failing a domain's queue, and
 * cancelling a waiter whose granted job somebody else ended
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

/* ======================================================================== */
/* cancel_waiters                                                           */

void test_cancel_waiters(void)
{
    mj_domain *d = fresh("vm-cw", 10.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    worker ws[4];
    worker_init(&ws[0], d, W_SYNC, MJ_JOB_QUERY, "q", 10.0);
    worker_init(&ws[1], d, W_SYNC, MJ_JOB_MODIFY, "m", 10.0);
    worker_init(&ws[2], d, W_ASYNC, MJ_ASYNC_JOB_SAVE, "save", 10.0);
    worker_init(&ws[3], d, W_SYNC, MJ_JOB_DESTROY, "destroy", 10.0);
    for (int i = 0; i < 4; i++)
        worker_start_queued(&ws[i], 3 + i);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 10.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_refs(d), 7);
    CHECK_INT(mj_domain_jobs_queued(d), 6);
    double t0 = now_s();
    mj_domain_cancel_waiters(d, "shutdown");
    for (int i = 0; i < 4; i++) {
        worker_join(&ws[i]);
        CHECK_INT(ws[i].rc, -1);
        CHECK_INT(ws[i].err, MJ_ERR_OPERATION_ABORTED);
        CHECK_STR(ws[i].msg, "job wait cancelled: shutdown");
    }
    CHECK_RANGE(now_s() - t0, 0.0, SLACK);
    {
        CHECK_INT(mj_pending_wait(1.0), -1);
        CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    }
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK(mj_domain_alive(d));
    /* later begins fail the same way, even on a free slot */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    CHECK_INT(mj_end_job(d), 1);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "s", 1.0, 0), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "p", 1.0,
                                     -1, false, 0), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    CHECK_INT(mj_abort_job(d, "a", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);

    /* held async and nested jobs may still end; the nested begin of the
     * async owner fails like any other */
    d = fresh("vm-cw2", 10.0, 0, false);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "perform3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "mon", 1.0, -1), 0);
    mj_domain_cancel_waiters(d, "daemon stopping");
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "mon", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: daemon stopping");
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

/* ======================================================================== */
/* cancelling a waiter whose granted job somebody else ended                */

/* A sliced begin's job is handed to it while nobody waits on it (the
 * holder's end grants it), and another caller ends that job: mj_end_job
 * does not ask who holds the job, and gives back its reference and queue
 * slot.  Cancelling the waiter then has nothing of its own left to give
 * back; dropping a reference anyway would take the creator's (refs 0, the
 * domain dead).  With `then_begin` a third caller has begun a new job
 * before the cancel, which must leave it alone too. */
static void cancel_ended_case(bool async, bool then_begin)
{
    char name[32];
    snprintf(name, sizeof(name), "vm-ended-%s%s", async ? "async" : "sync",
             then_begin ? "-next" : "");
    mj_domain *d = fresh(name, 5.0, 0, false);
    atomic_int rel;
    atomic_init(&rel, 0);
    worker h;
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));

    int rc = async ? mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "sliced", 5.0, 0.01)
                   : mj_begin_job(d, MJ_JOB_QUERY, "sliced", 5.0, 0.01);
    CHECK_INT(rc, MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_domain_jobs_queued(d), 2);

    /* the holder ends: the slot goes to our pending waiter */
    atomic_store(&rel, 1);
    worker_join(&h);
    CHECK_INT(h.end_rc, 2);
    if (async) {
        CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_SAVE);
        CHECK_INT(mj_domain_async_owner_thread(d), self_id());
        CHECK_STR(mj_domain_async_owner_api(d), "sliced");
    } else {
        CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
        CHECK_INT(mj_domain_owner_thread(d), self_id());
        CHECK_STR(mj_domain_owner_api(d), "sliced");
    }
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);

    /* another caller ends the job granted to the waiter */
    CHECK_INT(end_job_elsewhere(d, async), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_pending_count(), 1);
    if (then_begin) {
        if (async)
            CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, "next", 1.0, -1), 0);
        else
            CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "next", 1.0, -1), 0);
    }

    mj_pending_cancel();
    CHECK_INT(mj_pending_count(), 0);
    CHECKF(mj_domain_alive(d), "%s: cancelling the waiter killed the domain",
           name);
    CHECK_INT(mj_domain_refs(d), then_begin ? 2 : 1);
    CHECK_INT(mj_domain_jobs_queued(d), then_begin ? 1 : 0);
    CHECK_INT(mj_domain_active_job(d),
              then_begin && !async ? MJ_JOB_MODIFY : MJ_JOB_NONE);
    CHECK_INT(mj_domain_async_job(d),
              then_begin && async ? MJ_ASYNC_JOB_DUMP : MJ_ASYNC_JOB_NONE);
    if (then_begin)
        CHECK_INT(async ? mj_end_async_job(d) : mj_end_job(d), 1);
    /* the domain still works */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "after", 1.0, -1), 0);
    CHECK_INT(mj_end_job(d), 1);
    dispose(d);
}

void test_cancel_after_foreign_end(void)
{
    cancel_ended_case(false, false);
    cancel_ended_case(true, false);
    cancel_ended_case(false, true);
    cancel_ended_case(true, true);
}
