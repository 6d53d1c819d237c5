/*
 * waiter.c: a begin that could not start at once.  Its waiter sleeps on
 * its own condition variable (CLOCK_MONOTONIC) in slices, so that the
 * caller's signal handlers run in between; between slices it sits on the
 * thread's pending stack; an event loop can take it over (detach, poll,
 * cancel).  The queue it waits in and the hand-off are job.c's.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <stdlib.h>

static pthread_once_t waiter_cond_attr_once = PTHREAD_ONCE_INIT;
static pthread_condattr_t waiter_cond_attr;

static void
waiter_cond_attr_init(void)
{
    pthread_condattr_init(&waiter_cond_attr);
    pthread_condattr_setclock(&waiter_cond_attr, CLOCK_MONOTONIC);
}

/* this thread's begins that returned MJ_WAITING, innermost on top */
static _Thread_local mj_waiter *pending_top;
static _Thread_local int pending_depth;

static int
waiter_none_pending(void)
{
    return mj_error_set(MJ_ERR_INTERNAL_ERROR,
                        "this thread has no pending job wait");
}

mj_waiter *
mj_waiter_new(void)
{
    mj_waiter *w;

    pthread_once(&waiter_cond_attr_once, waiter_cond_attr_init);
    if (!(w = calloc(1, sizeof(*w))))
        return NULL;
    if (pthread_cond_init(&w->cond, &waiter_cond_attr) != 0) {
        free(w);
        return NULL;
    }
    return w;
}

void
mj_waiter_free(mj_waiter *w)
{
    mj_waiter_detach_notifier(w);
    pthread_cond_destroy(&w->cond);
    free(w->req.api);
    free(w->fail_blocker);
    free(w);
}

int
mj_waiter_sleep_locked(mj_domain *d, mj_waiter *w, double wait_for,
                       uint64_t *serial)
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
            *serial = w->serial;
            rc = 0;
            break;
        }
        if (w->state == WAITER_FAILED) {
            rc = mj_job_failure(d, w);
            break;
        }
        if (now >= w->deadline) {
            mj_job_withdraw_locked(d, w);
            rc = mj_job_timeout_error(d, &w->req, NULL);
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
    mj_waiter_free(w);
    if (left == 0)
        mj_domain_die(d);
    mj_domain_unpin(d);
    return rc;
}

void
mj_pending_push(mj_waiter *w)
{
    w->pending_below = pending_top;
    pending_top = w;
    pending_depth++;
    mj_note_add(w->dom, MJ_NOTE_WAITING, mj_slot_of(w->req.kind), 0, w);
}

mj_waiter *mj_pending_top(void) { return pending_top; }

/* mj_waiter_sleep_locked from outside the lock, noting the outcome; an
 * AbortJob's waiter that is granted applies the abort at once, so its
 * caller never holds the ABORT job */
static int
waiter_resolve(mj_waiter *w, double wait_for)
{
    mj_domain *d = w->dom;
    bool then_abort = w->req.then_abort;
    int slot = mj_slot_of(w->req.kind);
    uint64_t serial = 0;
    int rc;

    mj_domain_pin(d);                       /* w goes once resolved */
    pthread_mutex_lock(&d->lock);
    rc = mj_waiter_sleep_locked(d, w, wait_for, &serial);
    if (rc == 0 && then_abort)
        rc = mj_abort_apply(d);
    if (rc < 0)
        mj_note_add(d, MJ_NOTE_FAILED, slot, 0, NULL);
    else if (rc == 0)
        mj_note_add(d, MJ_NOTE_GRANTED, slot, serial, NULL);
    mj_domain_unpin(d);
    return rc == 0 ? mj_granted() : rc;
}

/* take w off this thread's pending stack wherever it is; false if absent */
static bool
waiter_pending_remove(mj_waiter *w)
{
    for (mj_waiter **at = &pending_top; *at; at = &(*at)->pending_below) {
        if (*at == w) {
            *at = w->pending_below;
            w->pending_below = NULL;
            pending_depth--;
            mj_note_close(w->dom, mj_slot_of(w->req.kind), MJ_NOTE_WAITING, 0, w);
            return true;
        }
    }
    return false;
}

int
mj_pending_wait(double wait_for)
{
    mj_waiter *w = pending_top;
    int rc;

    if (!w)
        return waiter_none_pending();
    if (mj_error_check_wait_for(wait_for) < 0)
        return -1;

    /* off the stack while it is resolved: w is freed once it is */
    waiter_pending_remove(w);
    rc = waiter_resolve(w, wait_for);
    if (rc == MJ_WAITING)
        mj_pending_push(w);
    return rc;
}

/* leave the queue, or give back a job granted while nobody was looking */
static void
waiter_cancel(mj_waiter *w)
{
    mj_domain *d = w->dom;
    char *api = NULL;
    bool unref = true;                     /* the begin's or the job's */
    int left;

    pthread_mutex_lock(&d->lock);
    if (w->state == WAITER_QUEUED) {
        mj_job_withdraw_locked(d, w);
    } else if (w->state == WAITER_GRANTED) {
        int slot = mj_slot_of(w->req.kind);

        /* unless somebody already ended the job it was handed, reference
         * and queue slot included */
        if (mj_slot_serial(d, slot) == w->serial)
            api = mj_release_slot_locked(d, slot);
        else
            unref = false;
    }
    left = unref ? mj_domain_drop_ref(d) : 1;
    pthread_mutex_unlock(&d->lock);
    free(api);
    mj_waiter_free(w);
    if (left == 0)
        mj_domain_die(d);
    mj_domain_unpin(d);
}

void
mj_pending_give_up(mj_waiter *w)
{
    if (waiter_pending_remove(w))
        waiter_cancel(w);
}

void
mj_pending_cancel(void)
{
    if (pending_top)
        mj_pending_give_up(pending_top);
}

int mj_pending_count(void) { return pending_depth; }

/* ---- waiters owned by an event loop ------------------------------------- */

int
mj_pending_detach(mj_notifier *n, mj_waiter **out)
{
    mj_waiter *w = pending_top;
    mj_domain *d;

    if (!w || !waiter_pending_remove(w))
        return waiter_none_pending();
    d = w->dom;
    mj_notifier_ref(n);
    pthread_mutex_lock(&d->lock);
    w->notifier = n;
    *out = w;
    if (w->state != WAITER_QUEUED)
        mj_waiter_announce(w);             /* resolved before we got here */
    pthread_mutex_unlock(&d->lock);
    return 0;
}

int
mj_waiter_poll(mj_waiter **wp)
{
    mj_waiter *w = *wp;
    int rc;

    if (!w)
        return mj_error_set(MJ_ERR_INTERNAL_ERROR, "no job wait to poll");
    rc = waiter_resolve(w, 0.0);
    if (rc != MJ_WAITING)
        *wp = NULL;                        /* resolved: freed */
    return rc;
}

double
mj_waiter_remaining(const mj_waiter *w)
{
    int64_t left = w->deadline - mj_now();

    return left > 0 ? (double)left / 1e9 : 0.0;
}

void
mj_waiter_cancel(mj_waiter **wp)
{
    mj_waiter *w = *wp;

    if (w) {
        *wp = NULL;
        waiter_cancel(w);
    }
}
