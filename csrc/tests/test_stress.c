/*
 * test_stress.c: the stress and chaos runs: many threads of random
 * operations (stress.c) over one domain, or over four that get removed
 * and shut down meanwhile
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "stress.h"

#include <stdlib.h>

/* ======================================================================== */
/* stress                                                                   */

typedef struct {
    long n_sync, n_async, n_nested, n_sliced, n_notified, n_abort, n_fail;
    long n_agent, n_nowait_busy;
} stress_totals;

/* run `threads` threads of random operations over ds[0..nd) */
static stress_totals
stress_run_threads(mj_domain **ds, int nd, int threads, double seconds,
                   bool limited, bool chaos, atomic_long *violations,
                   void (*meanwhile)(mj_domain **, int, double))
{
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    stress_arg *args = calloc((size_t)threads, sizeof(*args));
    atomic_int holders[STRESS_MAX_DOMS];
    atomic_int agent_holders[STRESS_MAX_DOMS];
    stress_totals t = { 0 };
    double start = now_s();
    for (int i = 0; i < nd; i++) {
        atomic_init(&holders[i], 0);
        atomic_init(&agent_holders[i], 0);
    }
    for (int i = 0; i < threads; i++) {
        args[i].nd = nd;
        for (int j = 0; j < nd; j++) {
            args[i].ds[j] = ds[j];
            args[i].holders_of[j] = &holders[j];
            args[i].agent_holders_of[j] = &agent_holders[j];
        }
        args[i].id = i;
        args[i].until = start + seconds;
        args[i].limited = limited;
        args[i].chaos = chaos;
        args[i].violations = violations;
        pthread_create(&th[i], NULL, stress_main, &args[i]);
    }
    if (meanwhile)
        meanwhile(ds, nd, start);
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        t.n_sync += args[i].n_sync;
        t.n_async += args[i].n_async;
        t.n_nested += args[i].n_nested;
        t.n_sliced += args[i].n_sliced;
        t.n_notified += args[i].n_notified;
        t.n_abort += args[i].n_abort;
        t.n_fail += args[i].n_fail_ok;
        t.n_agent += args[i].n_agent;
        t.n_nowait_busy += args[i].n_nowait_busy;
    }
    free(th);
    free(args);
    return t;
}

static void stress_print_totals(const char *name, int threads, double seconds,
                                stress_totals t)
{
    fprintf(stderr, "    %s: %d threads %.1fs: %ld sync, %ld async, %ld nested, "
            "%ld sliced (%ld via notifier), %ld aborts, %ld agent, %ld nowait "
            "busy, %ld expected failures\n", name, threads, seconds, t.n_sync,
            t.n_async, t.n_nested, t.n_sliced, t.n_notified, t.n_abort,
            t.n_agent, t.n_nowait_busy, t.n_fail);
}

static void stress_check_at_rest(mj_domain *d)
{
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_agent_job(d), MJ_AGENT_JOB_NONE);
    CHECK_INT(mj_domain_owner_thread(d), 0);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK(!mj_domain_abort_requested(d));
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
}

static void stress_run(const char *name, int threads, double seconds,
                       unsigned int max_queued)
{
    mj_domain *d = fresh(name, 1.0, max_queued, false);
    atomic_long violations;
    atomic_init(&violations, 0);
    stress_totals t = stress_run_threads(&d, 1, threads, seconds,
                                         max_queued > 0, false, &violations,
                                         NULL);
    stress_print_totals(name, threads, seconds, t);
    CHECK_INT(atomic_load(&violations), 0);
    CHECK(t.n_sync > 0);
    CHECK(t.n_async > 0);
    CHECK(t.n_nested > 0);
    CHECK(t.n_sliced > 0);
    CHECK(t.n_agent > 0);
    /* everything given back */
    stress_check_at_rest(d);
    /* and the domain still works */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "after", 1.0, -1), 0);
    CHECK_INT(mj_end_job(d), 1);
    CHECK_INT(mj_domain_remove(d), 0);
    mj_domain_unpin(d);
}

void test_stress(void)
{
    stress_run("vm-stress", 32, 1.0, 0);
}

void test_stress_max_queued(void)
{
    stress_run("vm-stress-mq", 16, 0.5, 4);
}

/* while the threads run: remove ds[0] at 0.3 s, shut ds[1]'s waiters down
 * at 0.4 s, remove ds[2] at 0.6 s; ds[3] is left alone */
static void stress_chaos_meanwhile(mj_domain **ds, int nd, double start)
{
    (void)nd;
    sleep_s(start + 0.3 - now_s());
    CHECK(mj_domain_remove(ds[0]) >= 0);
    sleep_s(start + 0.4 - now_s());
    mj_domain_cancel_waiters(ds[1], "shutdown");
    sleep_s(start + 0.6 - now_s());
    CHECK(mj_domain_remove(ds[2]) >= 0);
}

void test_stress_lifecycle(void)
{
    enum { T = 16, ND = 4 };
    mj_domain *ds[ND];
    for (int i = 0; i < ND; i++) {
        char name[32];
        snprintf(name, sizeof(name), "vm-chaos%d", i);
        ds[i] = fresh(name, 1.0, 0, false);
        for (int t = 0; t < T; t++)
            mj_domain_pin(ds[i]);          /* the threads' pins */
    }
    atomic_long violations;
    atomic_init(&violations, 0);
    stress_totals t = stress_run_threads(ds, ND, T, 1.0, false, true,
                                         &violations, stress_chaos_meanwhile);
    stress_print_totals("vm-chaos", T, 1.0, t);
    CHECK_INT(atomic_load(&violations), 0);
    /* removed domains are dead once every job ended */
    CHECK_INT(mj_domain_refs(ds[0]), 0);
    CHECK(!mj_domain_alive(ds[0]));
    CHECK_INT(mj_domain_refs(ds[2]), 0);
    /* the shut-down one refuses begins but is otherwise at rest */
    stress_check_at_rest(ds[1]);
    CHECK_INT(mj_begin_job(ds[1], MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    stress_check_at_rest(ds[3]);
    CHECK_INT(mj_domain_remove(ds[1]), 0);
    CHECK_INT(mj_domain_remove(ds[3]), 0);
    for (int i = 0; i < ND; i++)
        for (int k = 0; k <= T; k++)
            mj_domain_unpin(ds[i]);        /* the threads' and ours */
}
