/*
 * test_wakeups.c: threads waiting on one domain: every waiter woken,
 * cycles of many waiters, FIFO order, a mask-blocked waiter never holding
 * up an allowed one, the end of an async job waking its waiters
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

#include <stdlib.h>

/* ======================================================================== */
/* threads: wake-ups, fairness, mask                                        */


static void wake_in_exclusive(worker *w)
{
    (void)w;
    exclusive_enter();
    sleep_s(0.0005);
    exclusive_leave();
}

void test_wake_all_waiters(void)
{
    enum { N = 24, ROUNDS = 4 };
    mj_domain *d = fresh("vm-wake", 5.0, 0, false);
    static worker ws[N];
    atomic_store(&g_overlap, 0);
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
        for (int i = 0; i < N; i++) {
            static const int kinds[] = { MJ_JOB_QUERY, MJ_JOB_MODIFY,
                                         MJ_JOB_SUSPEND, MJ_JOB_DESTROY };
            worker_init(&ws[i], d, W_SYNC, kinds[i % 4], "waiter", 20.0);
            ws[i].in_job = wake_in_exclusive;
            worker_start(&ws[i]);
        }
        CHECKF(wait_refs(d, 2 + N), "round %d: refs %d, wanted %d", r,
               mj_domain_refs(d), 2 + N);
        CHECK_INT(mj_domain_jobs_queued(d), 1 + N);
        double t0 = now_s();
        CHECK_RANGE(mj_end_job(d), 1, 1 + N);
        int ok = 0;
        for (int i = 0; i < N; i++) {
            worker_join(&ws[i]);
            if (ws[i].rc == 0)
                ok++;
            else
                H_FAIL("round %d waiter %d: rc %d err %d \"%s\"", r, i,
                       ws[i].rc, ws[i].err, ws[i].msg);
        }
        CHECK_INT(ok, N);
        CHECK_RANGE(now_s() - t0, 0.0, SLACK + 2.0);
        CHECK_INT(mj_domain_refs(d), 1);
        CHECK_INT(mj_domain_jobs_queued(d), 0);
    }
    CHECK_INT(atomic_load(&g_overlap), 0);
    dispose(d);
}

typedef struct {
    mj_domain *d;
    int id, iters;
    atomic_int *failures;
    pthread_barrier_t *gate;    /* all threads start together */
} wake_cycle_arg;

static void *wake_cycle_main(void *arg)
{
    wake_cycle_arg *a = arg;
    unsigned seed = (unsigned)a->id * 7919u + 1;
    pthread_barrier_wait(a->gate);
    for (int i = 0; i < a->iters; i++) {
        static const int kinds[] = { MJ_JOB_QUERY, MJ_JOB_MODIFY,
                                     MJ_JOB_SUSPEND, MJ_JOB_MIGRATION_OP };
        int k = kinds[rand_r(&seed) % 4];
        if (mj_begin_job(a->d, k, "cycle", 20.0, -1) != 0) {
            atomic_fetch_add(a->failures, 1);
            H_FAIL("cycle thread %d iter %d: begin %s failed: %d \"%s\"",
                   a->id, i, mj_job_to_string(k), mj_last_error_code(),
                   mj_last_error_message());
            continue;
        }
        exclusive_enter();
        if (mj_domain_active_job(a->d) != k ||
            mj_domain_owner_thread(a->d) != self_id())
            atomic_fetch_add(&g_overlap, 1);
        exclusive_leave();
        if (mj_end_job(a->d) < 1)
            atomic_fetch_add(a->failures, 1);
    }
    return NULL;
}

void test_many_waiters_cycles(void)
{
    enum { T = 16, ITERS = 300 };
    mj_domain *d = fresh("vm-cyc", 20.0, 0, false);
    pthread_t th[T];
    wake_cycle_arg args[T];
    atomic_int failures;
    pthread_barrier_t gate;
    pthread_barrier_init(&gate, NULL, T);
    atomic_init(&failures, 0);
    atomic_store(&g_overlap, 0);
    double t0 = now_s();
    for (int i = 0; i < T; i++) {
        args[i] = (wake_cycle_arg){ d, i, ITERS, &failures, &gate };
        pthread_create(&th[i], NULL, wake_cycle_main, &args[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&gate);
    CHECK_INT(atomic_load(&failures), 0);
    CHECK_INT(atomic_load(&g_overlap), 0);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_RANGE(now_s() - t0, 0.0, 60.0);
    dispose(d);
}

void test_fifo_order(void)
{
    enum { N = 10 };
    mj_domain *d = fresh("vm-fifo", 5.0, 0, false);
    static worker ws[N];
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    for (int i = 0; i < N; i++) {
        static const int kinds[] = { MJ_JOB_MODIFY, MJ_JOB_QUERY,
                                     MJ_JOB_SUSPEND };
        worker_init(&ws[i], d, W_SYNC, kinds[i % 3], "fifo", 20.0);
        ws[i].hold = 0.001;
        worker_start_queued(&ws[i], 2 + i + 1);
    }
    long base = atomic_load(&g_seq);
    CHECK_RANGE(mj_end_job(d), 1, 1 + N);
    for (int i = 0; i < N; i++) {
        worker_join(&ws[i]);
        CHECK_INT(ws[i].rc, 0);
        CHECKF(ws[i].seq - base == i, "waiter %d served at position %ld",
               i, ws[i].seq - base);
    }
    CHECK_INT(mj_domain_refs(d), 1);

    /* mixed: async A, QUERY B, MODIFY C queued behind a MODIFY.  A gets
     * the async job first, B runs beside it, C waits for A to end. */
    atomic_int relA;
    atomic_init(&relA, 0);
    worker A, B, C;
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    worker_init(&A, d, W_ASYNC, MJ_ASYNC_JOB_SAVE, "save", 10.0);
    A.release = &relA;
    worker_start_queued(&A, 3);
    worker_init(&B, d, W_SYNC, MJ_JOB_QUERY, "query", 10.0);
    worker_start_queued(&B, 4);
    worker_init(&C, d, W_SYNC, MJ_JOB_MODIFY, "modify", 10.0);
    worker_start_queued(&C, 5);
    base = atomic_load(&g_seq);
    CHECK_RANGE(mj_end_job(d), 3, 4);
    CHECK(wait_flag(&A.acquired, SLACK));
    /* B may run now: it must not wait for A to end */
    CHECKF(wait_flag(&B.done, SLACK), "QUERY waiter not served while an "
           "async job that allows it runs");
    sleep_s(0.05);
    CHECK(!atomic_load(&C.acquired));
    atomic_store(&relA, 1);
    worker_join(&A);
    worker_join(&B);
    worker_join(&C);
    CHECK_INT(A.rc, 0);
    CHECK_INT(B.rc, 0);
    CHECK_INT(C.rc, 0);
    /* A and B are granted by the same end, so the order in which they
     * notice is arbitrary; C comes strictly after both */
    CHECK(A.seq - base <= 1 && B.seq - base <= 1);
    CHECK_INT(C.seq - base, 2);
    CHECK_INT(B.seen_async, MJ_ASYNC_JOB_SAVE);
    CHECK_INT(C.seen_async, MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}

void test_mask_blocked_does_not_block_allowed(void)
{
    mj_domain *d = fresh("vm-mb", 5.0, 0, false);
    /* slot busy with the owner's nested job: A (forbidden) then B (allowed)
     * queue; the nested end hands the slot to B */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "perform3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                  1.0, -1), 0);
    worker A, B;
    worker_init(&A, d, W_SYNC, MJ_JOB_MODIFY, "modify", 10.0);
    worker_start_queued(&A, 4);
    worker_init(&B, d, W_SYNC, MJ_JOB_QUERY, "query", 10.0);
    worker_start_queued(&B, 5);
    CHECK_RANGE(mj_end_nested_job(d), 3, 4);
    CHECKF(wait_flag(&B.done, SLACK), "allowed waiter held up by a "
           "mask-blocked one");
    CHECK_INT(B.rc, 0);
    CHECK_INT(B.seen_async, MJ_ASYNC_JOB_MIGRATION_OUT);
    sleep_s(0.03);
    CHECK(!atomic_load(&A.acquired));
    /* the owner still gets its nested jobs */
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                  1.0, -1), 0);
    CHECK_INT(mj_end_nested_job(d), 3);
    CHECK_RANGE(mj_migration_job_finish(d), 1, 2);
    worker_join(&A);
    worker_join(&B);
    CHECK_INT(A.rc, 0);
    CHECK_INT(A.seen_async, MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);

    /* slot free: an allowed job arriving behind a blocked waiter gets it
     * at once */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN,
                                     "prepare3", 1.0, -1, false, 0), 0);
    worker_init(&A, d, W_SYNC, MJ_JOB_QUERY, "query", 10.0);
    worker_start_queued(&A, 3);
    double t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_DESTROY, "destroy", 1.0, -1), 0);
    CHECK_RANGE(now_s() - t0, 0.0, 0.9);
    CHECK_INT(mj_end_job(d), 3);
    CHECK(!atomic_load(&A.acquired));
    CHECK_RANGE(mj_migration_job_finish(d), 1, 2);
    worker_join(&A);
    CHECK_INT(A.rc, 0);

    /* a mask change that lets a waiter through must not leave it waiting
     * until the next end: set under the owner's nested job, then end it */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, "dump", 1.0, -1), 0);
    worker_init(&A, d, W_SYNC, MJ_JOB_SUSPEND, "suspend", 10.0);
    worker_start_queued(&A, 3);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_DUMP, "m", 1.0, -1), 0);
    CHECK_INT(mj_set_async_job_mask(d, MJ_JOB_MASK(MJ_JOB_SUSPEND)), 0);
    CHECK_RANGE(mj_end_nested_job(d), 2, 3);
    CHECKF(wait_flag(&A.done, SLACK), "SUSPEND waiter not woken after the "
           "mask allowed it and the slot was freed");
    CHECK_INT(A.rc, 0);
    CHECK_INT(A.seen_async, MJ_ASYNC_JOB_DUMP);
    worker_join(&A);

    /* widening the mask while the slot is free lets a waiter in at once */
    worker_init(&A, d, W_SYNC, MJ_JOB_MODIFY, "modify", 10.0);
    worker_start_queued(&A, 3);
    sleep_s(0.02);
    CHECK(!atomic_load(&A.acquired));
    CHECK_INT(mj_set_async_job_mask(d, MJ_JOB_MASK(MJ_JOB_MODIFY)), 0);
    CHECKF(wait_flag(&A.done, SLACK), "MODIFY waiter not woken when "
           "set_async_job_mask allowed it");
    worker_join(&A);
    CHECK_INT(A.rc, 0);
    CHECK_INT(A.seen_async, MJ_ASYNC_JOB_DUMP);
    CHECK_INT(mj_end_async_job(d), 1);
    dispose(d);
}

void test_end_async_wakes(void)
{
    mj_domain *d = fresh("vm-ea", 5.0, 0, false);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    worker A, B;
    worker_init(&A, d, W_ASYNC, MJ_ASYNC_JOB_DUMP, "dump", 10.0);
    A.hold = 0.05;
    worker_start_queued(&A, 3);
    worker_init(&B, d, W_SYNC, MJ_JOB_MODIFY, "modify", 10.0);
    worker_start_queued(&B, 4);
    long base = atomic_load(&g_seq);
    CHECK_RANGE(mj_end_async_job(d), 1, 3);
    worker_join(&A);
    worker_join(&B);
    CHECK_INT(A.rc, 0);
    CHECK_INT(A.seen_async, MJ_ASYNC_JOB_DUMP);
    CHECK_INT(A.seen_owner, (uint64_t)(uintptr_t)A.th);
    CHECK_RANGE(A.end_rc, 1, 2);
    CHECK_INT(B.rc, 0);
    CHECK_INT(B.seen_async, MJ_ASYNC_JOB_NONE);
    CHECK_INT(A.seq - base, 0);
    CHECK_INT(B.seq - base, 1);

    /* a sync end hands over to an async waiter */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    worker_init(&A, d, W_MIGSTART, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3", 10.0);
    worker_start_queued(&A, 3);
    CHECK_RANGE(mj_end_job(d), 1, 2);
    worker_join(&A);
    CHECK_INT(A.rc, 0);
    CHECK_HEX(A.seen_mask, 0x77);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}
