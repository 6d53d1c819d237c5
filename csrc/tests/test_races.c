/*
 * test_races.c: races: async holders against sync ones, nested jobs
 * between queries
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

#include <stdlib.h>

/* ======================================================================== */
/* races: async/sync, nested jobs between queries                           */

/* async / sync race: async holders never coexist with a MODIFY or SUSPEND
 * (not in the default mask), sync holders never overlap */
typedef struct {
    mj_domain *d;
    int id, iters;
    bool async_side;
    atomic_int *failures;
    pthread_barrier_t *gate;
} races_arg;

static void *races_main(void *arg)
{
    races_arg *a = arg;
    unsigned seed = (unsigned)a->id * 31u + 7;
    pthread_barrier_wait(a->gate);
    for (int i = 0; i < a->iters; i++) {
        if (a->async_side) {
            int k = (i + a->id) % 2 ? MJ_ASYNC_JOB_SAVE : MJ_ASYNC_JOB_DUMP;
            if (mj_begin_async_job(a->d, k, "race-async", 20.0, -1) != 0) {
                H_FAIL("async begin: %d \"%s\"", mj_last_error_code(),
                       mj_last_error_message());
                atomic_fetch_add(a->failures, 1);
                continue;
            }
            if (mj_domain_async_job(a->d) != k ||
                mj_domain_async_owner_thread(a->d) != self_id())
                atomic_fetch_add(&g_overlap, 1);
            int act = mj_domain_active_job(a->d);
            if (act != MJ_JOB_NONE && !(MJ_DEFAULT_JOB_MASK & MJ_JOB_MASK(act)))
                atomic_fetch_add(&g_overlap, 1);
            int nested = rand_r(&seed) % 3;
            for (int n = 0; n < nested; n++) {
                if (mj_begin_nested_job(a->d, k, "race-nested", 20.0, -1) != 0) {
                    H_FAIL("nested begin: %d \"%s\"", mj_last_error_code(),
                           mj_last_error_message());
                    atomic_fetch_add(a->failures, 1);
                    continue;
                }
                exclusive_enter();
                if (mj_domain_active_job(a->d) != MJ_JOB_ASYNC_NESTED)
                    atomic_fetch_add(&g_overlap, 1);
                exclusive_leave();
                mj_end_nested_job(a->d);
            }
            if (mj_end_async_job(a->d) < 1)
                atomic_fetch_add(a->failures, 1);
        } else {
            static const int kinds[] = { MJ_JOB_QUERY, MJ_JOB_MODIFY,
                                         MJ_JOB_SUSPEND, MJ_JOB_QUERY };
            int k = kinds[rand_r(&seed) % 4];
            if (mj_begin_job(a->d, k, "race-sync", 20.0, -1) != 0) {
                H_FAIL("sync begin %s: %d \"%s\"", mj_job_to_string(k),
                       mj_last_error_code(), mj_last_error_message());
                atomic_fetch_add(a->failures, 1);
                continue;
            }
            exclusive_enter();
            if (k != MJ_JOB_QUERY && mj_domain_async_job(a->d) != MJ_ASYNC_JOB_NONE)
                atomic_fetch_add(&g_overlap, 1);
            exclusive_leave();
            if (mj_end_job(a->d) < 1)
                atomic_fetch_add(a->failures, 1);
        }
    }
    return NULL;
}

void test_async_sync_race(void)
{
    enum { T = 10, ITERS = 150 };
    mj_domain *d = fresh("vm-race", 20.0, 0, false);
    pthread_t th[T];
    races_arg args[T];
    atomic_int failures;
    pthread_barrier_t gate;
    pthread_barrier_init(&gate, NULL, T);
    atomic_init(&failures, 0);
    atomic_store(&g_overlap, 0);
    for (int i = 0; i < T; i++) {
        args[i] = (races_arg){ d, i, ITERS, i < 4, &failures, &gate };
        pthread_create(&th[i], NULL, races_main, &args[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&gate);
    CHECK_INT(atomic_load(&failures), 0);
    CHECK_INT(atomic_load(&g_overlap), 0);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    dispose(d);
}

typedef struct {
    mj_domain *d;
    atomic_int *stop;
    atomic_long *served;
    atomic_int *failures;
} races_query_arg;

static void *races_query_loop(void *arg)
{
    races_query_arg *a = arg;
    while (!atomic_load(a->stop)) {
        if (mj_begin_job(a->d, MJ_JOB_QUERY, "stats", 20.0, -1) != 0) {
            H_FAIL("query begin: %d \"%s\"", mj_last_error_code(),
                   mj_last_error_message());
            atomic_fetch_add(a->failures, 1);
            continue;
        }
        exclusive_enter();
        if (mj_domain_async_job(a->d) != MJ_ASYNC_JOB_MIGRATION_OUT)
            atomic_fetch_add(&g_overlap, 1);
        exclusive_leave();
        mj_end_job(a->d);
        atomic_fetch_add(a->served, 1);
    }
    return NULL;
}

void test_nested_interleaving(void)
{
    enum { T = 4, NESTED = 300 };
    mj_domain *d = fresh("vm-il", 20.0, 0, false);
    atomic_int stop, failures;
    atomic_long served;
    atomic_init(&stop, 0);
    atomic_init(&failures, 0);
    atomic_init(&served, 0);
    atomic_store(&g_overlap, 0);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "perform3",
                                     1.0, -1, false, 0), 0);
    pthread_t th[T];
    races_query_arg qa = { d, &stop, &served, &failures };
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, races_query_loop, &qa);
    while (atomic_load(&served) < 10)
        sleep_s(0.001);
    long before = atomic_load(&served);
    int nested_ok = 0;
    double limit = now_s() + 10.0;
    /* at least NESTED monitor calls, and on until queries got between
     * them (a 2-CPU box under ASan may not schedule them at first) */
    for (int i = 0; i < NESTED ||
         (atomic_load(&served) - before < 20 && now_s() < limit); i++) {
        if (mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                20.0, -1) != 0) {
            H_FAIL("nested %d: %d \"%s\"", i, mj_last_error_code(),
                   mj_last_error_message());
            continue;
        }
        exclusive_enter();
        if (mj_domain_active_job(d) != MJ_JOB_ASYNC_NESTED ||
            mj_domain_owner_thread(d) != self_id())
            atomic_fetch_add(&g_overlap, 1);
        exclusive_leave();
        sleep_s(0.00002);
        mj_end_nested_job(d);
        nested_ok++;
    }
    long during = atomic_load(&served) - before;
    atomic_store(&stop, 1);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    CHECK(nested_ok >= NESTED);
    CHECKF(during >= 20, "no query interleaved with %d nested jobs", NESTED);
    CHECK_INT(atomic_load(&failures), 0);
    CHECK_INT(atomic_load(&g_overlap), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}
