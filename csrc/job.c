/*
 * job.c: sync, async and nested jobs: begin, wait, hand-off, end.
 *
 * Every state change that can let a waiter in runs dispatch(), which hands
 * the freed slot directly to the oldest queued waiter that may now start
 * (and to every later one that may start as well).  So at rest no queued
 * waiter could start, a newcomer that may start can take the slot at once
 * without overtaking anybody, and no wake-up is ever lost.  Each waiter
 * sleeps on its own condition variable (CLOCK_MONOTONIC), so a hand-off
 * wakes exactly the thread that got the job.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <math.h>
#include <stdlib.h>

static pthread_once_t cond_attr_once = PTHREAD_ONCE_INIT;
static pthread_condattr_t cond_attr;

static void
cond_attr_init(void)
{
    pthread_condattr_init(&cond_attr);
    pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC);
}

/* this thread's begins that returned MJ_WAITING, innermost on top */
static _Thread_local mj_waiter *pending_top;
static _Thread_local int pending_depth;

static uint64_t
self_id(void)
{
    return (uint64_t)pthread_self();
}

static bool
mask_allows(const mj_domain *d, int job)
{
    return d->async_job == MJ_ASYNC_JOB_NONE || (d->mask & MJ_JOB_MASK(job));
}

static bool
may_start(const mj_domain *d, const job_request *r)
{
    if (d->active != MJ_JOB_NONE)
        return false;
    switch (r->kind) {
    case SLOT_SYNC: return mask_allows(d, r->job);
    case SLOT_NESTED: return true;          /* nested jobs skip the mask */
    case SLOT_ASYNC: return d->async_job == MJ_ASYNC_JOB_NONE;
    }
    return false;
}

/* libvirt's choice of whom to name: the async owner when the async job is
 * what blocks us, the sync owner otherwise (always for nested jobs) */
static const char *
blocker_api(const mj_domain *d, const job_request *r)
{
    bool by_async = (r->kind == SLOT_SYNC && !mask_allows(d, r->job)) ||
                    (r->kind == SLOT_ASYNC && d->async_job != MJ_ASYNC_JOB_NONE);

    return by_async ? d->async_owner_api : d->owner_api;
}

static int
lock_error(const mj_domain *d, const job_request *r, int code,
           const char *suffix)
{
    const char *api = blocker_api(d, r);

    if (api)
        return mj_error_set(code, "cannot acquire state change lock "
                            "(held by monitor=%s)%s", api, suffix);
    return mj_error_set(code, "cannot acquire state change lock%s", suffix);
}

static bool
queue_full(const mj_domain *d, const job_request *r)
{
    bool exempt = r->kind == SLOT_ASYNC ||
                  (r->kind == SLOT_SYNC && r->job == MJ_JOB_DESTROY);

    return d->max_queued && !exempt &&
           (unsigned int)d->jobs_queued + 1 > d->max_queued;
}

/* `by` is the waiter the slot is handed to (NULL when taken at once); a
 * waiter that gives up a grant it never picked up releases the slot only
 * if it is still the one holding it */
static void
grant(mj_domain *d, job_request *r, const mj_waiter *by)
{
    if (r->kind == SLOT_ASYNC) {
        d->async_grant = by;
        d->async_job = r->job;
        d->async_owner = r->thread;
        d->async_owner_api = r->api;       /* NULL: reset when it ended */
        d->phase = MJ_PHASE_NONE;
        d->mask = r->set_mask ? r->mask | MJ_JOB_MASK(MJ_JOB_DESTROY)
                              : MJ_DEFAULT_JOB_MASK;
        d->async_started = mj_now();
        d->info_type = r->info_type;
        d->abort_requested = false;
    } else {
        d->active = r->kind == SLOT_NESTED ? MJ_JOB_ASYNC_NESTED : r->job;
        d->active_grant = by;
        d->owner = r->thread;
        d->owner_api = r->api;
    }
    r->api = NULL;
}

static void
unlink_waiter(mj_domain *d, mj_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        d->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        d->tail = w->prev;
    w->prev = w->next = NULL;
}

static void
dispatch(mj_domain *d)
{
    mj_waiter *w = d->head;

    /* nobody can start while the sync slot is taken */
    while (w && d->active == MJ_JOB_NONE) {
        mj_waiter *next = w->next;

        if (may_start(d, &w->req)) {
            unlink_waiter(d, w);
            grant(d, &w->req, w);
            w->state = WAITER_GRANTED;
            mj_waiter_announce(w);
        }
        w = next;
    }
}

static void
waiter_free(mj_waiter *w)
{
    mj_waiter_detach_notifier(w);
    pthread_cond_destroy(&w->cond);
    free(w->req.api);
    free(w);
}

/* the sync slot is emptied; returns the owner API to free once unlocked */
static char *
release_sync_locked(mj_domain *d)
{
    char *api = d->owner_api;

    d->active = MJ_JOB_NONE;
    d->active_grant = NULL;
    d->owner = 0;
    d->owner_api = NULL;
    d->jobs_queued--;
    dispatch(d);
    return api;
}

char *
mj_release_async_locked(mj_domain *d)
{
    char *api = d->async_owner_api;

    d->async_job = MJ_ASYNC_JOB_NONE;
    d->async_grant = NULL;
    d->async_owner = 0;
    d->async_owner_api = NULL;
    d->phase = MJ_PHASE_NONE;
    d->mask = MJ_DEFAULT_JOB_MASK;
    d->async_started = 0;
    d->info_type = MJ_JOB_INFO_NONE;
    d->abort_requested = false;
    d->jobs_queued--;
    dispatch(d);
    return api;
}

static int
cancelled_error(const mj_domain *d)
{
    return mj_error_set(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: %s",
                        d->cancel_reason ? d->cancel_reason : "shutdown");
}

static int
waiter_failure(const mj_domain *d, const mj_waiter *w)
{
    if (w->fail_code == MJ_ERR_OPERATION_ABORTED)
        return cancelled_error(d);
    return mj_error_no_domain(d);
}

/*
 * Sleep until w is granted, fails, times out, or `wait_for` passes.
 * Called with d locked; returns with it unlocked.  Frees w (and gives back
 * its reference and pin) unless the result is MJ_WAITING.
 */
static int
wait_locked(mj_domain *d, mj_waiter *w, double wait_for)
{
    int64_t now = mj_now();
    int64_t until = w->deadline;
    int64_t span;
    int rc;
    int left;

    if (wait_for >= 0 && mj_seconds_to_ns(wait_for, 0, &span) == 0 &&
        mj_deadline_after(now, span) < until)
        until = mj_deadline_after(now, span);

    for (;;) {
        if (w->state == WAITER_GRANTED) {
            rc = 0;
            break;
        }
        if (w->state == WAITER_FAILED) {
            rc = waiter_failure(d, w);
            break;
        }
        if (now >= w->deadline) {
            unlink_waiter(d, w);
            d->jobs_queued--;
            rc = lock_error(d, &w->req, MJ_ERR_OPERATION_TIMEOUT, "");
            break;
        }
        if (now >= until) {
            pthread_mutex_unlock(&d->lock);
            return MJ_WAITING;
        }
        struct timespec ts = { until / 1000000000, until % 1000000000 };
        pthread_cond_timedwait(&w->cond, &d->lock, &ts);
        now = mj_now();
    }

    left = rc < 0 ? mj_domain_drop_ref(d) : 1;   /* the begin's reference */
    pthread_mutex_unlock(&d->lock);
    waiter_free(w);
    if (left == 0)
        mj_domain_die(d);
    mj_domain_unpin(d);
    return rc;
}

int
mj_begin(mj_domain *d, slot_kind kind, int job, const char *api,
         double timeout, double wait_for,
         bool set_mask, uint64_t mask, int info_type)
{
    job_request req = {
        .kind = kind, .job = job, .api = NULL, .thread = self_id(),
        .set_mask = set_mask, .mask = mask, .info_type = info_type,
    };
    int64_t span;
    mj_waiter *w;
    int rc;

    if (mj_seconds_to_ns(timeout, d->default_timeout, &span) < 0)
        return -1;
    if (isnan(wait_for))
        return mj_error_set(MJ_ERR_INVALID_ARG, "wait_for must be a number");
    if (api && !(req.api = mj_strdup_name(api, &rc)))
        return -1;
    pthread_mutex_lock(&d->lock);
    if (d->removed || !mj_domain_alive(d))
        rc = mj_error_no_domain(d);
    else if (d->cancelled)
        rc = cancelled_error(d);
    else if (kind == SLOT_NESTED && d->async_job != job)
        rc = mj_error_set(MJ_ERR_INTERNAL_ERROR,
                          "unexpected async job %d type expected %d",
                          job, d->async_job);
    else if (queue_full(d, &req))
        rc = lock_error(d, &req, MJ_ERR_OPERATION_FAILED,
                        " due to max_queued limit");
    /* libvirt 2011: the reference is taken before waiting; taken here, with
     * the queue count, so nobody sees one without the other */
    else if (!mj_domain_ref_if_alive(d))
        rc = mj_error_no_domain(d);
    else
        rc = 0;
    if (rc < 0) {
        pthread_mutex_unlock(&d->lock);
        free(req.api);
        return rc;
    }

    d->jobs_queued++;
    if (may_start(d, &req)) {
        grant(d, &req, NULL);
        pthread_mutex_unlock(&d->lock);
        return 0;
    }

    pthread_once(&cond_attr_once, cond_attr_init);
    if (!(w = calloc(1, sizeof(*w))) ||
        pthread_cond_init(&w->cond, &cond_attr) != 0) {
        d->jobs_queued--;
        pthread_mutex_unlock(&d->lock);
        free(w);
        free(req.api);
        mj_domain_unref_internal(d);
        return mj_error_set(MJ_ERR_NO_MEMORY, "out of memory");
    }
    w->dom = d;
    w->req = req;
    w->deadline = mj_deadline_after(mj_now(), span);
    w->state = WAITER_QUEUED;
    w->prev = d->tail;
    if (d->tail)
        d->tail->next = w;
    else
        d->head = w;
    d->tail = w;
    mj_domain_pin(d);                      /* the memory, while we sleep */

    rc = wait_locked(d, w, wait_for);
    if (rc == MJ_WAITING) {
        w->pending_below = pending_top;
        pending_top = w;
        pending_depth++;
    }
    return rc;
}

/* ---- pending waiters ---------------------------------------------------- */

/* wait_locked from outside the lock; an AbortJob's waiter that is granted
 * applies the abort at once, so its caller never holds the ABORT job */
static int
resolve(mj_waiter *w, double wait_for)
{
    mj_domain *d = w->dom;
    bool then_abort = w->req.then_abort;
    int rc;

    mj_domain_pin(d);                       /* w goes once resolved */
    pthread_mutex_lock(&d->lock);
    rc = wait_locked(d, w, wait_for);
    if (rc == 0 && then_abort)
        rc = mj_abort_apply(d);
    mj_domain_unpin(d);
    return rc;
}

int
mj_pending_wait(double wait_for)
{
    mj_waiter *w = pending_top;
    int rc;

    if (!w)
        return mj_error_set(MJ_ERR_INTERNAL_ERROR,
                            "this thread has no pending job wait");
    if (isnan(wait_for))
        return mj_error_set(MJ_ERR_INVALID_ARG, "wait_for must be a number");
    mj_waiter *below = w->pending_below;    /* w is freed once resolved */

    w->claimed = true;
    rc = resolve(w, wait_for);
    if (rc != MJ_WAITING) {
        pending_top = below;
        pending_depth--;
    }
    return rc;
}

/* leave the queue, or give back a job granted while nobody was looking */
static void
cancel_waiter(mj_waiter *w)
{
    mj_domain *d = w->dom;
    char *api = NULL;
    bool unref = true;                     /* the begin's or the job's */
    int left;

    pthread_mutex_lock(&d->lock);
    if (w->state == WAITER_QUEUED) {
        unlink_waiter(d, w);
        d->jobs_queued--;
    } else if (w->state == WAITER_GRANTED) {
        bool async = w->req.kind == SLOT_ASYNC;

        /* unless somebody already ended the job it was handed, reference
         * and queue slot included */
        if ((async ? d->async_grant : d->active_grant) == w)
            api = async ? mj_release_async_locked(d) : release_sync_locked(d);
        else
            unref = false;
    }
    left = unref ? mj_domain_drop_ref(d) : 1;
    pthread_mutex_unlock(&d->lock);
    free(api);
    waiter_free(w);
    if (left == 0)
        mj_domain_die(d);
    mj_domain_unpin(d);
}

static mj_waiter *
pending_pop(void)
{
    mj_waiter *w = pending_top;

    if (w) {
        pending_top = w->pending_below;
        w->pending_below = NULL;
        pending_depth--;
    }
    return w;
}

void
mj_pending_cancel(void)
{
    mj_waiter *w = pending_pop();

    if (w)
        cancel_waiter(w);
}

void
mj_pending_cancel_unclaimed(void)
{
    if (pending_top && !pending_top->claimed)
        mj_pending_cancel();
}

int mj_pending_count(void) { return pending_depth; }

/* ---- waiters owned by an event loop ------------------------------------- */

mj_waiter *
mj_pending_detach(mj_notifier *n)
{
    mj_waiter *w = pending_pop();
    mj_domain *d;

    if (!w)
        return NULL;
    d = w->dom;
    mj_notifier_ref(n);
    pthread_mutex_lock(&d->lock);
    w->notifier = n;
    if (w->state != WAITER_QUEUED)
        mj_waiter_announce(w);             /* resolved before we got here */
    pthread_mutex_unlock(&d->lock);
    return w;
}

int
mj_waiter_poll(mj_waiter *w)
{
    return resolve(w, 0.0);
}

double
mj_waiter_remaining(const mj_waiter *w)
{
    int64_t left = w->deadline - mj_now();

    return left > 0 ? (double)left / 1e9 : 0.0;
}

void mj_waiter_cancel(mj_waiter *w) { cancel_waiter(w); }

/* ---- begins ------------------------------------------------------------- */

static int
check_range(int value, int last, const char *what)
{
    if (value < 0 || value >= last)
        return mj_error_set(MJ_ERR_INVALID_ARG, "invalid %s %d", what, value);
    return 0;
}

static int
invalid_job(void)
{
    return mj_error_set(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
}

int
mj_begin_job(mj_domain *d, int job, const char *api, double timeout,
             double wait_for)
{
    if (check_range(job, MJ_JOB_LAST, "job") < 0)
        return -1;
    if (job == MJ_JOB_NONE || job >= MJ_JOB_ASYNC)
        return invalid_job();
    return mj_begin(d, SLOT_SYNC, job, api, timeout, wait_for,
                    false, 0, MJ_JOB_INFO_NONE);
}

#define QUICK_BEGIN(name, job)                                           \
    int mj_begin_##name##_job(mj_domain *d)                             \
    {                                                                   \
        return mj_begin(d, SLOT_SYNC, job, NULL, -1.0, MJ_WAIT_SLICE,   \
                        false, 0, MJ_JOB_INFO_NONE);                    \
    }
QUICK_BEGIN(query, MJ_JOB_QUERY)
QUICK_BEGIN(destroy, MJ_JOB_DESTROY)
QUICK_BEGIN(suspend, MJ_JOB_SUSPEND)
QUICK_BEGIN(modify, MJ_JOB_MODIFY)
QUICK_BEGIN(abort, MJ_JOB_ABORT)
QUICK_BEGIN(migration_op, MJ_JOB_MIGRATION_OP)

int
mj_begin_async_job(mj_domain *d, int async_job, const char *api,
                   double timeout, double wait_for)
{
    if (check_range(async_job, MJ_ASYNC_JOB_LAST, "async job") < 0)
        return -1;
    if (async_job == MJ_ASYNC_JOB_NONE)
        return invalid_job();
    return mj_begin(d, SLOT_ASYNC, async_job, api, timeout, wait_for,
                    false, 0, MJ_JOB_INFO_NONE);
}

int
mj_begin_nested_job(mj_domain *d, int async_job, const char *api,
                    double timeout, double wait_for)
{
    if (check_range(async_job, MJ_ASYNC_JOB_LAST, "async job") < 0)
        return -1;
    return mj_begin(d, SLOT_NESTED, async_job, api, timeout, wait_for,
                    false, 0, MJ_JOB_INFO_NONE);
}

/* ---- ends --------------------------------------------------------------- */

static int
no_job(void)
{
    return mj_error_set(MJ_ERR_OPERATION_INVALID,
                        "no job is active on the domain");
}

/* after unlocking, with `left` from mj_domain_drop_ref under the lock:
 * the refs left */
static int
give_back(mj_domain *d, char *api, int left)
{
    free(api);
    if (left == 0)
        mj_domain_die(d);
    return left < 0 ? mj_error_no_domain(d) : left;
}

static int
end_sync(mj_domain *d, bool nested_only)
{
    char *api;
    int left;

    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d)) {
        pthread_mutex_unlock(&d->lock);
        return mj_error_no_domain(d);
    }
    if (d->active == MJ_JOB_NONE ||
        (nested_only && d->active != MJ_JOB_ASYNC_NESTED)) {
        pthread_mutex_unlock(&d->lock);
        return nested_only ? mj_error_set(MJ_ERR_OPERATION_INVALID,
                                          "no nested job is active on the domain")
                           : no_job();
    }
    api = release_sync_locked(d);
    left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    return give_back(d, api, left);
}

int mj_end_job(mj_domain *d) { return end_sync(d, false); }
int mj_end_nested_job(mj_domain *d) { return end_sync(d, true); }

int
mj_end_async_job(mj_domain *d)
{
    char *api;
    int left;

    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d) || d->async_job == MJ_ASYNC_JOB_NONE) {
        bool alive = mj_domain_alive(d);

        pthread_mutex_unlock(&d->lock);
        return alive ? no_job() : mj_error_no_domain(d);
    }
    api = mj_release_async_locked(d);
    left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    return give_back(d, api, left);
}

int
mj_set_async_job_mask(mj_domain *d, uint64_t mask)
{
    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d)) {
        pthread_mutex_unlock(&d->lock);
        return mj_error_no_domain(d);
    }
    if (d->async_job != MJ_ASYNC_JOB_NONE) {
        d->mask = mask | MJ_JOB_MASK(MJ_JOB_DESTROY);
        dispatch(d);                       /* a wider mask lets waiters in */
    }
    pthread_mutex_unlock(&d->lock);
    return 0;
}

/* ---- abort -------------------------------------------------------------- */

int
mj_abort_job(mj_domain *d, const char *api, double timeout, double wait_for)
{
    int rc = mj_begin_job(d, MJ_JOB_ABORT, api, timeout, wait_for);

    if (rc == MJ_WAITING)
        pending_top->req.then_abort = true;  /* the waiter just pushed */
    return rc == 0 ? mj_abort_apply(d) : rc;
}

int
mj_abort_apply(mj_domain *d)
{
    char *api;
    int rc = 0;
    int left;

    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d) || d->active != MJ_JOB_ABORT) {
        bool alive = mj_domain_alive(d);

        pthread_mutex_unlock(&d->lock);
        return alive ? mj_error_set(MJ_ERR_OPERATION_INVALID,
                                    "no abort job is held on the domain")
                     : mj_error_no_domain(d);
    }
    if (d->async_job == MJ_ASYNC_JOB_NONE)
        rc = no_job();
    else if (d->async_job == MJ_ASYNC_JOB_MIGRATION_IN)
        rc = mj_error_set(MJ_ERR_OPERATION_INVALID, "cannot abort incoming "
                          "migration; use virDomainDestroy instead");
    else
        d->abort_requested = true;
    api = release_sync_locked(d);
    left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    give_back(d, api, left);
    return rc;
}

int
mj_check_abort(mj_domain *d)
{
    int rc = 0;

    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d))
        rc = mj_error_no_domain(d);
    else if (d->async_job != MJ_ASYNC_JOB_NONE && d->abort_requested)
        rc = mj_error_set(MJ_ERR_OPERATION_ABORTED, "%s: canceled by client",
                          mj_async_job_to_string(d->async_job));
    pthread_mutex_unlock(&d->lock);
    return rc;
}
