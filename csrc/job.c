/*
 * job.c: sync, async and nested jobs: begin, wait, hand-off, end.
 *
 * Every state change that can let a waiter in runs job_dispatch(), which hands
 * the freed slot directly to the oldest queued waiter that may now start
 * (and to every later one that may start as well).  So at rest no queued
 * waiter could start, a newcomer that may start can take the slot at once
 * without overtaking anybody, and no wake-up is ever lost.  Each waiter
 * sleeps on its own condition variable (CLOCK_MONOTONIC), so a hand-off
 * wakes exactly the thread that got the job.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */
#include "testing.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t job_cond_attr_once = PTHREAD_ONCE_INIT;
static pthread_condattr_t job_cond_attr;

static void
job_cond_attr_init(void)
{
    pthread_condattr_init(&job_cond_attr);
    pthread_condattr_setclock(&job_cond_attr, CLOCK_MONOTONIC);
}

/* this thread's begins that returned MJ_WAITING, innermost on top */
static _Thread_local mj_waiter *pending_top;
static _Thread_local int pending_depth;

static uint64_t
job_self_id(void)
{
    return (uint64_t)pthread_self();
}

/* ---- what this thread's begins left behind ------------------------------
 *
 * CPython runs a signal handler the moment a C call returns, before the
 * caller has stored the result: an exception raised there loses whatever
 * the begin left behind, a job granted or a place in the queue.  So every
 * begin notes here what it left, and mj_begin_abandon gives back the
 * newest note of a domain and slot.  A handler's own begins note above the
 * interrupted one and close their notes as they finish (an end closes the
 * grant's note), so the interrupted begin's note is the newest open one.
 */
typedef enum { NOTE_CLOSED, NOTE_GRANTED, NOTE_WAITING, NOTE_FAILED } job_note_kind;

typedef struct {
    const mj_domain *dom;     /* compared, never followed */
    mj_waiter *waiter;        /* NOTE_WAITING: on this thread's pending stack */
    uint64_t serial;          /* NOTE_GRANTED: the grant */
    unsigned char kind;       /* job_note_kind */
    bool async;               /* the slot: async, or sync (nested included) */
} job_note;

#define JOB_NOTES 64          /* notes kept; older ones are forgotten */

static _Thread_local job_note job_notes[JOB_NOTES];
static _Thread_local unsigned job_notes_next;

static void
job_note_add(const mj_domain *d, job_note_kind kind, bool async,
             uint64_t serial, mj_waiter *w)
{
    job_note *n = &job_notes[job_notes_next++ % JOB_NOTES];

    n->dom = d;
    n->waiter = w;
    n->serial = serial;
    n->kind = kind;
    n->async = async;
}

/* the newest open note matching, or NULL */
static job_note *
job_note_find(const mj_domain *d, bool async, job_note_kind kind,
              uint64_t serial, const mj_waiter *w)
{
    for (unsigned i = 1; i <= JOB_NOTES && i <= job_notes_next; i++) {
        job_note *n = &job_notes[(job_notes_next - i) % JOB_NOTES];

        if (n->kind == NOTE_CLOSED || n->dom != d || n->async != async)
            continue;
        if (kind == NOTE_CLOSED ||
            (n->kind == kind && n->serial == serial && n->waiter == w))
            return n;
    }
    return NULL;
}

static void
job_note_close(const mj_domain *d, bool async, job_note_kind kind,
               uint64_t serial, const mj_waiter *w)
{
    job_note *n = job_note_find(d, async, kind, serial, w);

    if (n)
        n->kind = NOTE_CLOSED;
}

/* a failed begin notes that it left nothing: returns -1 */
static int
job_note_failed(const mj_domain *d, bool async)
{
    job_note_add(d, NOTE_FAILED, async, 0, NULL);
    return -1;
}

int mj_begin_failed(const mj_domain *d, bool async) { return job_note_failed(d, async); }

void
mj_note_grant(const mj_domain *d, bool async, uint64_t serial)
{
    job_note_add(d, NOTE_GRANTED, async, serial, NULL);
}

void
mj_note_grant_closed(const mj_domain *d, bool async, uint64_t serial)
{
    job_note_close(d, async, NOTE_GRANTED, serial, NULL);
}

/* ---- a test hook: raise a signal as a grant returns ---------------------- */

static _Thread_local int job_grant_signal;

void
mj_testing_signal_on_grant(int signo)
{
    job_grant_signal = signo;
}

/* a begin returns "granted": fire the hook once, if it is set */
static int
job_granted(void)
{
    int signo = job_grant_signal;

    if (signo) {
        job_grant_signal = 0;
        raise(signo);
    }
    return 0;
}

int mj_begin_granted(void) { return job_granted(); }

/* ---- the queue ------------------------------------------------------------ */

static bool
job_mask_allows(const mj_domain *d, int job)
{
    return d->async_job == MJ_ASYNC_JOB_NONE || (d->mask & MJ_JOB_MASK(job));
}

static bool
job_may_start(const mj_domain *d, const job_request *r)
{
    if (d->active != MJ_JOB_NONE)
        return false;
    switch (r->kind) {
    case SLOT_SYNC: return job_mask_allows(d, r->job);
    case SLOT_NESTED: return true;          /* nested jobs skip the mask */
    case SLOT_ASYNC: return d->async_job == MJ_ASYNC_JOB_NONE;
    }
    return false;
}

/* libvirt's choice of whom to name: the async owner when the async job is
 * what blocks us, the sync owner otherwise (always for nested jobs) */
static const char *
job_blocker_api(const mj_domain *d, const job_request *r)
{
    bool by_async = (r->kind == SLOT_SYNC && !job_mask_allows(d, r->job)) ||
                    (r->kind == SLOT_ASYNC && d->async_job != MJ_ASYNC_JOB_NONE);

    return by_async ? d->async_owner_api : d->owner_api;
}

static int
job_lock_error(const char *blocker, int code, const char *suffix)
{
    if (blocker)
        return mj_error_set(code, "cannot acquire state change lock "
                            "(held by monitor=%s)%s", blocker, suffix);
    return mj_error_set(code, "cannot acquire state change lock%s", suffix);
}

static bool
job_queue_full(const mj_domain *d, const job_request *r)
{
    bool exempt = r->kind == SLOT_ASYNC ||
                  (r->kind == SLOT_SYNC && r->job == MJ_JOB_DESTROY);

    return d->max_queued && !exempt &&
           (unsigned int)d->jobs_queued + 1 > d->max_queued;
}

/* put the request in its slot; returns the grant's serial */
static uint64_t
job_grant(mj_domain *d, job_request *r)
{
    uint64_t serial = ++d->grants;

    if (r->kind == SLOT_ASYNC) {
        d->async_serial = serial;
        d->async_job = r->job;
        d->async_owner = r->thread;
        d->async_owner_api = r->api;       /* NULL: reset when it ended */
        d->phase = MJ_PHASE_NONE;
        d->mask = r->set_mask ? r->mask | MJ_JOB_MASK(MJ_JOB_DESTROY)
                              : MJ_DEFAULT_JOB_MASK;
        d->async_started = mj_now();
        d->info_type = r->info_type;
        d->abort_requested = false;
        d->api_flags = r->api_flags;
        d->async_paused = false;
        mj_jobdata_start_locked(d, r->operation >= 0 ? r->operation
                                   : mj_jobdata_operation_of(r->job),
                                MJ_JOB_STATE_ACTIVE, 0, d->async_started);
    } else {
        d->active = r->kind == SLOT_NESTED ? MJ_JOB_ASYNC_NESTED : r->job;
        d->active_serial = serial;
        d->owner = r->thread;
        d->owner_api = r->api;
    }
    r->api = NULL;
    return serial;
}

static void
job_unlink_waiter(mj_domain *d, mj_waiter *w)
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

/* a queued waiter whose deadline passed leaves the queue failed: it must
 * not be handed a slot its owner has given up on (the owner may not be
 * looking: a busy event loop, a thread between two waits) */
static void
job_expire_waiter(mj_domain *d, mj_waiter *w, const char *blocker)
{
    job_unlink_waiter(d, w);
    d->jobs_queued--;
    w->state = WAITER_FAILED;
    w->fail_code = MJ_ERR_OPERATION_TIMEOUT;
    w->fail_blocker = blocker ? strdup(blocker) : NULL;
    mj_waiter_announce(w);
}

/* Hand the free slots to the queued waiters that may start now, oldest
 * first; expired waiters are failed on the way, not served.  `ended_api`
 * is the owner API of the job whose end frees a slot (NULL otherwise): an
 * expired waiter's timeout names it, the job it waited for. */
static void
job_dispatch(mj_domain *d, const char *ended_api)
{
    mj_waiter *w = d->head;
    int64_t now = w ? mj_now() : 0;

    /* nobody can start while the sync slot is taken */
    while (w && d->active == MJ_JOB_NONE) {
        mj_waiter *next = w->next;

        if (job_may_start(d, &w->req)) {
            if (now >= w->deadline) {
                job_expire_waiter(d, w, ended_api ? ended_api
                                                  : job_blocker_api(d, &w->req));
            } else {
                job_unlink_waiter(d, w);
                w->serial = job_grant(d, &w->req);
                w->state = WAITER_GRANTED;
                mj_waiter_announce(w);
            }
        }
        w = next;
    }
}

void mj_dispatch_locked(mj_domain *d) { job_dispatch(d, NULL); }

static void
job_waiter_free(mj_waiter *w)
{
    mj_waiter_detach_notifier(w);
    pthread_cond_destroy(&w->cond);
    free(w->req.api);
    free(w->fail_blocker);
    free(w);
}

/* the sync slot is emptied; returns the owner API to free once unlocked */
static char *
job_release_sync_locked(mj_domain *d)
{
    char *api = d->owner_api;

    d->active = MJ_JOB_NONE;
    d->active_serial = 0;
    d->owner = 0;
    d->owner_api = NULL;
    d->jobs_queued--;
    job_dispatch(d, api);
    return api;
}

char *
mj_release_async_locked(mj_domain *d)
{
    char *api = d->async_owner_api;

    d->async_job = MJ_ASYNC_JOB_NONE;
    d->async_serial = 0;
    d->async_owner = 0;
    d->async_owner_api = NULL;
    d->phase = MJ_PHASE_NONE;
    d->mask = MJ_DEFAULT_JOB_MASK;
    d->async_started = 0;
    d->info_type = MJ_JOB_INFO_NONE;
    d->abort_requested = false;
    mj_jobdata_reset_locked(d);
    d->jobs_queued--;
    job_dispatch(d, api);
    return api;
}

static int
job_cancelled_error(const mj_domain *d)
{
    return mj_error_set(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: %s",
                        d->cancel_reason ? d->cancel_reason : "shutdown");
}

static int
job_waiter_failure(const mj_domain *d, const mj_waiter *w)
{
    switch (w->fail_code) {
    case MJ_ERR_OPERATION_ABORTED:
        return job_cancelled_error(d);
    case MJ_ERR_OPERATION_TIMEOUT:
        return job_lock_error(w->fail_blocker, MJ_ERR_OPERATION_TIMEOUT, "");
    default:
        return mj_error_no_domain(d);
    }
}

/*
 * Sleep until w is granted, fails, times out, or `wait_for` passes.
 * Called with d locked; returns with it unlocked.  Frees w (and gives back
 * its reference and pin) unless the result is MJ_WAITING; on 0 *serial is
 * the grant's.
 */
static int
job_wait_locked(mj_domain *d, mj_waiter *w, double wait_for, uint64_t *serial)
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
            rc = job_waiter_failure(d, w);
            break;
        }
        if (now >= w->deadline) {
            job_unlink_waiter(d, w);
            d->jobs_queued--;
            rc = job_lock_error(job_blocker_api(d, &w->req),
                                MJ_ERR_OPERATION_TIMEOUT, "");
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
    job_waiter_free(w);
    if (left == 0)
        mj_domain_die(d);
    mj_domain_unpin(d);
    return rc;
}

/* the checks a begin makes under the lock before it queues; 0 or -1 */
static int
job_admit_locked(mj_domain *d, slot_kind kind, int job, const job_request *req)
{
    if (d->removed || !mj_domain_alive(d))
        return mj_error_no_domain(d);
    if (d->cancelled)
        return job_cancelled_error(d);
    if (req->migration_start && mj_migration_allowed_locked(d) < 0)
        return -1;
    if (kind == SLOT_NESTED && d->async_job != job)
        return mj_error_set(MJ_ERR_INTERNAL_ERROR,
                            "unexpected async job %d type expected %d",
                            job, d->async_job);
    if (job_queue_full(d, req))
        return job_lock_error(job_blocker_api(d, req), MJ_ERR_OPERATION_FAILED,
                              " due to max_queued limit");
    /* libvirt 2011: the reference is taken before waiting; taken here, with
     * the queue count, so nobody sees one without the other */
    return mj_domain_take_ref(d) < 0 ? -1 : 0;
}

int
mj_begin(mj_domain *d, slot_kind kind, int job, const char *api,
         double timeout, double wait_for,
         bool set_mask, uint64_t mask, int info_type)
{
    job_request req = {
        .kind = kind, .job = job, .api = (char *)api,
        .set_mask = set_mask, .mask = mask, .info_type = info_type,
        .operation = -1,
    };

    return mj_begin_req(d, &req, timeout, wait_for);
}

/* `r->api` is the caller's (borrowed) name; the request is copied */
int
mj_begin_req(mj_domain *d, job_request *r, double timeout, double wait_for)
{
    job_request req = *r;
    slot_kind kind = req.kind;
    int job = req.job;
    const char *api = req.api;
    bool async = kind == SLOT_ASYNC;
    uint64_t serial = 0;
    int64_t span;
    mj_waiter *w;
    int rc;

    if (mj_seconds_to_ns(timeout, d->default_timeout, &span) < 0)
        return job_note_failed(d, async);
    req.api = NULL;
    req.thread = job_self_id();
    if (isnan(wait_for)) {
        mj_error_set(MJ_ERR_INVALID_ARG, "wait_for must be a number");
        return job_note_failed(d, async);
    }
    if (api && !(req.api = mj_strdup_name(api, &rc)))
        return job_note_failed(d, async);
    pthread_mutex_lock(&d->lock);
    if (job_admit_locked(d, kind, job, &req) < 0) {
        pthread_mutex_unlock(&d->lock);
        free(req.api);
        return job_note_failed(d, async);
    }

    d->jobs_queued++;
    if (job_may_start(d, &req)) {
        serial = job_grant(d, &req);
        pthread_mutex_unlock(&d->lock);
        job_note_add(d, NOTE_GRANTED, async, serial, NULL);
        return job_granted();
    }

    pthread_once(&job_cond_attr_once, job_cond_attr_init);
    if (!(w = calloc(1, sizeof(*w))) ||
        pthread_cond_init(&w->cond, &job_cond_attr) != 0) {
        d->jobs_queued--;
        pthread_mutex_unlock(&d->lock);
        free(w);
        free(req.api);
        mj_domain_unref_internal(d);
        mj_error_no_memory();
        return job_note_failed(d, async);
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

    rc = job_wait_locked(d, w, wait_for, &serial);
    if (rc == MJ_WAITING) {
        w->pending_below = pending_top;
        pending_top = w;
        pending_depth++;
        job_note_add(d, NOTE_WAITING, async, 0, w);
        return rc;
    }
    if (rc < 0)
        return job_note_failed(d, async);
    job_note_add(d, NOTE_GRANTED, async, serial, NULL);
    return job_granted();
}

/* ---- pending waiters ---------------------------------------------------- */

/* job_wait_locked from outside the lock, noting the outcome; an AbortJob's
 * waiter that is granted applies the abort at once, so its caller never
 * holds the ABORT job */
static int
job_resolve(mj_waiter *w, double wait_for)
{
    mj_domain *d = w->dom;
    bool then_abort = w->req.then_abort;
    bool async = w->req.kind == SLOT_ASYNC;
    uint64_t serial = 0;
    int rc;

    mj_domain_pin(d);                       /* w goes once resolved */
    pthread_mutex_lock(&d->lock);
    rc = job_wait_locked(d, w, wait_for, &serial);
    if (rc == 0 && then_abort)
        rc = mj_abort_apply(d);
    if (rc < 0)
        job_note_add(d, NOTE_FAILED, async, 0, NULL);
    else if (rc == 0)
        job_note_add(d, NOTE_GRANTED, async, serial, NULL);
    mj_domain_unpin(d);
    return rc == 0 ? job_granted() : rc;
}

/* take w off this thread's pending stack wherever it is; false if absent */
static bool
job_pending_remove(mj_waiter *w)
{
    for (mj_waiter **at = &pending_top; *at; at = &(*at)->pending_below) {
        if (*at == w) {
            *at = w->pending_below;
            w->pending_below = NULL;
            pending_depth--;
            job_note_close(w->dom, w->req.kind == SLOT_ASYNC, NOTE_WAITING, 0, w);
            return true;
        }
    }
    return false;
}

int
mj_pending_wait(double wait_for)
{
    mj_waiter *w = pending_top;

    if (!w)
        return mj_error_set(MJ_ERR_INTERNAL_ERROR,
                            "this thread has no pending job wait");
    if (isnan(wait_for))
        return mj_error_set(MJ_ERR_INVALID_ARG, "wait_for must be a number");

    /* off the stack while it is resolved: w is freed once it is */
    pending_top = w->pending_below;
    pending_depth--;
    job_note_close(w->dom, w->req.kind == SLOT_ASYNC, NOTE_WAITING, 0, w);
    int rc = job_resolve(w, wait_for);
    if (rc == MJ_WAITING) {
        w->pending_below = pending_top;
        pending_top = w;
        pending_depth++;
        job_note_add(w->dom, NOTE_WAITING, w->req.kind == SLOT_ASYNC, 0, w);
    }
    return rc;
}

/* leave the queue, or give back a job granted while nobody was looking */
static void
job_cancel_waiter(mj_waiter *w)
{
    mj_domain *d = w->dom;
    char *api = NULL;
    bool unref = true;                     /* the begin's or the job's */
    int left;

    pthread_mutex_lock(&d->lock);
    if (w->state == WAITER_QUEUED) {
        job_unlink_waiter(d, w);
        d->jobs_queued--;
    } else if (w->state == WAITER_GRANTED) {
        bool async = w->req.kind == SLOT_ASYNC;

        /* unless somebody already ended the job it was handed, reference
         * and queue slot included */
        if ((async ? d->async_serial : d->active_serial) == w->serial)
            api = async ? mj_release_async_locked(d) : job_release_sync_locked(d);
        else
            unref = false;
    }
    left = unref ? mj_domain_drop_ref(d) : 1;
    pthread_mutex_unlock(&d->lock);
    free(api);
    job_waiter_free(w);
    if (left == 0)
        mj_domain_die(d);
    mj_domain_unpin(d);
}

void
mj_pending_cancel(void)
{
    mj_waiter *w = pending_top;

    if (w && job_pending_remove(w))
        job_cancel_waiter(w);
}

int mj_pending_count(void) { return pending_depth; }

/* give back the job granted with `serial`, if it is still that grant */
static void
job_release_grant(mj_domain *d, bool async, uint64_t serial)
{
    char *api = NULL;
    int left = 1;

    pthread_mutex_lock(&d->lock);
    if (mj_domain_alive(d) &&
        (async ? d->async_serial : d->active_serial) == serial) {
        api = async ? mj_release_async_locked(d) : job_release_sync_locked(d);
        left = mj_domain_drop_ref(d);
    }
    pthread_mutex_unlock(&d->lock);
    free(api);
    if (left == 0)
        mj_domain_die(d);
}

void
mj_begin_abandon(mj_domain *d, bool async)
{
    job_note *n = job_note_find(d, async, NOTE_CLOSED, 0, NULL);
    job_note note;

    if (!n)
        return;
    note = *n;
    n->kind = NOTE_CLOSED;
    if (note.kind == NOTE_GRANTED)
        job_release_grant(d, async, note.serial);
    else if (note.kind == NOTE_WAITING && job_pending_remove(note.waiter))
        job_cancel_waiter(note.waiter);
}

/* ---- waiters owned by an event loop ------------------------------------- */

int
mj_pending_detach(mj_notifier *n, mj_waiter **out)
{
    mj_waiter *w = pending_top;
    mj_domain *d;

    if (!w || !job_pending_remove(w))
        return mj_error_set(MJ_ERR_INTERNAL_ERROR,
                            "this thread has no pending job wait");
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
    rc = job_resolve(w, 0.0);
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
        job_cancel_waiter(w);
    }
}

/* ---- begins ------------------------------------------------------------- */

int
mj_begin_job(mj_domain *d, int job, const char *api, double timeout,
             double wait_for)
{
    if (mj_error_check_range(job, MJ_JOB_LAST, "job") < 0)
        return job_note_failed(d, false);
    if (job == MJ_JOB_NONE || job >= MJ_JOB_ASYNC) {
        mj_error_invalid_job();
        return job_note_failed(d, false);
    }
    return mj_begin(d, SLOT_SYNC, job, api, timeout, wait_for,
                    false, 0, MJ_JOB_INFO_NONE);
}

/* the one-argument begins: no API name, the domain's timeout, one slice */
static int
job_begin_quick(mj_domain *d, int job)
{
    return mj_begin(d, SLOT_SYNC, job, NULL, -1.0, MJ_WAIT_SLICE,
                    false, 0, MJ_JOB_INFO_NONE);
}

int mj_begin_query_job(mj_domain *d) { return job_begin_quick(d, MJ_JOB_QUERY); }
int mj_begin_destroy_job(mj_domain *d) { return job_begin_quick(d, MJ_JOB_DESTROY); }
int mj_begin_suspend_job(mj_domain *d) { return job_begin_quick(d, MJ_JOB_SUSPEND); }
int mj_begin_modify_job(mj_domain *d) { return job_begin_quick(d, MJ_JOB_MODIFY); }
int mj_begin_abort_job(mj_domain *d) { return job_begin_quick(d, MJ_JOB_ABORT); }
int mj_begin_migration_op_job(mj_domain *d) { return job_begin_quick(d, MJ_JOB_MIGRATION_OP); }

int
mj_begin_async_job(mj_domain *d, int async_job, const char *api,
                   double timeout, double wait_for)
{
    if (mj_error_check_range(async_job, MJ_ASYNC_JOB_LAST, "async job") < 0)
        return job_note_failed(d, true);
    if (async_job == MJ_ASYNC_JOB_NONE) {
        mj_error_invalid_job();
        return job_note_failed(d, true);
    }
    return mj_begin(d, SLOT_ASYNC, async_job, api, timeout, wait_for,
                    false, 0, MJ_JOB_INFO_NONE);
}

int
mj_begin_nested_job(mj_domain *d, int async_job, const char *api,
                    double timeout, double wait_for)
{
    if (mj_error_check_range(async_job, MJ_ASYNC_JOB_LAST, "async job") < 0)
        return job_note_failed(d, false);
    return mj_begin(d, SLOT_NESTED, async_job, api, timeout, wait_for,
                    false, 0, MJ_JOB_INFO_NONE);
}

/* ---- ends --------------------------------------------------------------- */

static int
job_no_job(void)
{
    return mj_error_set(MJ_ERR_OPERATION_INVALID,
                        "no job is active on the domain");
}

/* after unlocking, with `left` from mj_domain_drop_ref under the lock: the
 * refs left.  The grant's note, if this thread made it, is closed: the job
 * is no begin's to give back any more. */
static int
job_give_back(mj_domain *d, bool async, uint64_t serial, char *api, int left)
{
    free(api);
    job_note_close(d, async, NOTE_GRANTED, serial, NULL);
    if (left == 0)
        mj_domain_die(d);
    return left < 0 ? mj_error_no_domain(d) : left;
}

static int
job_end_sync(mj_domain *d, bool nested_only)
{
    uint64_t serial;
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
                           : job_no_job();
    }
    serial = d->active_serial;
    api = job_release_sync_locked(d);
    left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    return job_give_back(d, false, serial, api, left);
}

int mj_end_job(mj_domain *d) { return job_end_sync(d, false); }
int mj_end_nested_job(mj_domain *d) { return job_end_sync(d, true); }

int mj_end_async_job(mj_domain *d) { return mj_end_async_job_error(d, NULL); }

int
mj_end_async_job_error(mj_domain *d, const char *error)
{
    char *copy = NULL;
    uint64_t serial;
    char *api;
    int left;
    int err;

    if (error && !(copy = mj_strdup_name(error, &err)))
        return -1;
    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d) || d->async_job == MJ_ASYNC_JOB_NONE) {
        bool alive = mj_domain_alive(d);

        pthread_mutex_unlock(&d->lock);
        free(copy);
        return alive ? job_no_job() : mj_error_no_domain(d);
    }
    mj_jobdata_complete_locked(d, copy);     /* takes copy */
    serial = d->async_serial;
    api = mj_release_async_locked(d);
    left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    return job_give_back(d, true, serial, api, left);
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
        job_dispatch(d, NULL);             /* a wider mask lets waiters in */
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
    if (rc != 0)
        return rc;
    rc = mj_abort_apply(d);
    /* the apply ended the ABORT job and closed its note: this begin left
     * nothing, and its note must say so (an older note is not its own) */
    job_note_add(d, NOTE_FAILED, false, 0, NULL);
    return rc;
}

int
mj_abort_apply(mj_domain *d)
{
    uint64_t serial;
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
        rc = job_no_job();
    else if (d->async_job == MJ_ASYNC_JOB_MIGRATION_IN)
        rc = mj_error_set(MJ_ERR_OPERATION_INVALID, "cannot abort incoming "
                          "migration; use virDomainDestroy instead");
    else
        d->abort_requested = true;
    serial = d->active_serial;
    api = job_release_sync_locked(d);
    left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    job_give_back(d, false, serial, api, left);
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
