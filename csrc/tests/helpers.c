/*
 * helpers.c: utilities shared by the C test files (see helpers.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* utilities                                                                */

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_s(double s)
{
    struct timespec ts;
    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

uint64_t self_id(void)
{
    return (uint64_t)(uintptr_t)pthread_self();
}

mj_domain *fresh(const char *name, double default_timeout,
                 unsigned int max_queued, bool strict)
{
    mj_domain *d = mj_domain_new(name, default_timeout, max_queued, strict);
    if (!d) {
        H_FAIL("mj_domain_new(\"%s\") returned NULL: %d %s", name,
               mj_last_error_code(), mj_last_error_message());
        fprintf(stderr, "cannot continue without a domain\n");
        exit(2);
    }
    return d;
}

/* Bring refs to 0 (whatever is still held) and drop the creator's pin, so
 * that ASan's leak checker sees every domain freed. */
void dispose(mj_domain *d)
{
    if (mj_domain_alive(d)) {
        mj_domain_remove(d);
        int guard = 1000;
        while (mj_domain_refs(d) > 0 && guard-- > 0)
            mj_domain_unref(d);
    }
    mj_domain_unpin(d);
}

/* poll until refs == n (at most 10 s); true when reached */
bool wait_refs(mj_domain *d, int n)
{
    double end = now_s() + 10.0;
    while (now_s() < end) {
        if (mj_domain_refs(d) == n)
            return true;
        sleep_s(0.0005);
    }
    return mj_domain_refs(d) == n;
}

bool wait_flag(atomic_int *flag, double limit)
{
    double end = now_s() + limit;
    while (!atomic_load(flag)) {
        if (now_s() > end)
            return false;
        sleep_s(0.0005);
    }
    return true;
}

const char *async_job_label(int async_job)
{
    const char *s = mj_async_job_to_string(async_job);
    return s ? s : "?";
}

/* ------------------------------------------------------------------------ */
/* worker threads (the type is in helpers.h)                               */

atomic_long g_seq;

static void *helpers_worker_main(void *arg)
{
    worker *w = arg;
    double t0 = now_s();
    int rc = -1;
    switch (w->op) {
    case W_SYNC:
        rc = mj_begin_job(w->d, w->kind, w->api, w->timeout, -1);
        break;
    case W_ASYNC:
        rc = mj_begin_async_job(w->d, w->kind, w->api, w->timeout, -1);
        break;
    case W_NESTED:
        rc = mj_begin_nested_job(w->d, w->kind, w->api, w->timeout, -1);
        break;
    case W_MIGSTART:
        rc = mj_migration_job_start(w->d, w->kind, w->api, w->timeout, -1,
                                    false, 0);
        break;
    case W_ABORT:
        rc = mj_abort_job(w->d, w->api, w->timeout, -1);
        break;
    }
    w->waited = now_s() - t0;
    w->rc = rc;
    if (rc == 0) {
        w->seq = atomic_fetch_add(&g_seq, 1);
        if (w->op != W_ABORT) {
            w->seen_active = mj_domain_active_job(w->d);
            w->seen_async = mj_domain_async_job(w->d);
            w->seen_mask = mj_domain_mask(w->d);
            w->seen_owner = (w->op == W_ASYNC || w->op == W_MIGSTART)
                ? mj_domain_async_owner_thread(w->d)
                : mj_domain_owner_thread(w->d);
        }
        atomic_store(&w->acquired, 1);
        if (w->op != W_ABORT) {
            if (w->in_job)
                w->in_job(w);
            if (w->release)
                while (!atomic_load(w->release))
                    sleep_s(0.0005);
            sleep_s(w->hold);
            if (w->op == W_ASYNC || w->op == W_MIGSTART)
                w->end_rc = mj_end_async_job(w->d);
            else
                w->end_rc = mj_end_job(w->d);
        }
    } else {
        w->err = mj_last_error_code();
        snprintf(w->msg, sizeof(w->msg), "%s", mj_last_error_message());
    }
    atomic_store(&w->done, 1);
    return NULL;
}

void worker_init(worker *w, mj_domain *d, int op, int kind,
                 const char *api, double timeout)
{
    memset(w, 0, sizeof(*w));
    w->d = d;
    w->op = op;
    w->kind = kind;
    w->api = api;
    w->timeout = timeout;
    w->rc = -99;
    w->seq = -1;
    atomic_init(&w->acquired, 0);
    atomic_init(&w->done, 0);
}

void worker_start(worker *w)
{
    if (pthread_create(&w->th, NULL, helpers_worker_main, w) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(2);
    }
}

/* start w and wait until its begin is queued (refs reached `refs`) */
void worker_start_queued(worker *w, int refs)
{
    worker_start(w);
    CHECKF(wait_refs(w->d, refs), "worker kind %d never queued: refs %d, "
           "wanted %d", w->kind, mj_domain_refs(w->d), refs);
}

void worker_join(worker *w)
{
    pthread_join(w->th, NULL);
}

typedef struct {
    mj_domain *d;
    bool async;
    int rc;
} helpers_end_arg;

static void *helpers_end_main(void *arg)
{
    helpers_end_arg *a = arg;
    a->rc = a->async ? mj_end_async_job(a->d) : mj_end_job(a->d);
    return NULL;
}

int end_job_elsewhere(mj_domain *d, bool async)
{
    helpers_end_arg a = { d, async, -99 };
    pthread_t th;
    if (pthread_create(&th, NULL, helpers_end_main, &a) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(2);
    }
    pthread_join(th, NULL);
    return a.rc;
}

/* ------------------------------------------------------------------------ */
/* a probe for "two threads held the sync slot at once"                     */

static atomic_int helpers_in_sync;   /* threads holding a sync slot right now */
atomic_int g_overlap;                /* times two held it at once */

void exclusive_enter(void)
{
    if (atomic_fetch_add(&helpers_in_sync, 1) != 0)
        atomic_fetch_add(&g_overlap, 1);
}

void exclusive_leave(void)
{
    atomic_fetch_sub(&helpers_in_sync, 1);
}
