/*
 * job.c: the queue, the hand-off and the begin itself (sync, async, nested
 * and agent jobs alike); the per-kind begins are begin.c's, the ends end.c's.
 *
 * Every state change that can let a waiter in runs job_dispatch(), which hands
 * the freed slot directly to the oldest queued waiter that may now start
 * (and to every later one that may start as well).  So at rest no queued
 * waiter could start, a newcomer that may start can take the slot at once
 * without overtaking anybody, and no wake-up is ever lost.  Each waiter
 * sleeps on its own condition variable (waiter.c), so a hand-off wakes
 * exactly the thread that got the job.  What a begin left behind is noted
 * on its thread (notes.c).
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <stdlib.h>
#include <string.h>

static uint64_t
job_self_id(void)
{
    return (uint64_t)pthread_self();
}

/* ---- the queue ------------------------------------------------------------ */

static bool
job_mask_allows(const mj_domain *d, int job)
{
    return d->async_job == MJ_ASYNC_JOB_NONE || (d->mask & MJ_JOB_MASK(job));
}

/* libvirt's virDomainObjCanSetJob and NestedJobAllowed: each request
 * waits only for the slot it needs (an agent job neither waits for the
 * sync slot nor for the mask, and nobody else waits for the agent slot) */
static bool
job_may_start(const mj_domain *d, const job_request *r)
{
    bool sync_free = d->active == MJ_JOB_NONE;

    switch (r->kind) {
    case SLOT_SYNC: return sync_free && job_mask_allows(d, r->job);
    case SLOT_NESTED: return sync_free;     /* nested jobs skip the mask */
    case SLOT_ASYNC: return sync_free && d->async_job == MJ_ASYNC_JOB_NONE;
    case SLOT_AGENT: return d->agent_active == MJ_AGENT_JOB_NONE;
    }
    return false;
}

/* libvirt's choice of whom to name: the agent owner for an agent job; the
 * async owner when the async job is what blocks us, the sync owner
 * otherwise (always for nested jobs) */
static const char *
job_blocker_api(const mj_domain *d, const job_request *r)
{
    if (r->kind == SLOT_AGENT)
        return d->agent_owner_api;
    bool by_async = (r->kind == SLOT_SYNC && !job_mask_allows(d, r->job)) ||
                    (r->kind == SLOT_ASYNC && d->async_job != MJ_ASYNC_JOB_NONE);

    return by_async ? d->async_owner_api : d->owner_api;
}

/* libvirt's texts: an agent request names its blocker "agent=", any other
 * "monitor=" (the combined "monitor=X agent=Y" belongs to a request for
 * both slots, which no begin here makes: docs/DECISIONS.md) */
static int
job_lock_error(slot_kind kind, const char *blocker, int code,
               const char *suffix)
{
    if (blocker)
        return mj_error_set(code, "cannot acquire state change lock "
                            "(held by %s=%s)%s",
                            kind == SLOT_AGENT ? "agent" : "monitor",
                            blocker, suffix);
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

    if (r->kind == SLOT_AGENT) {
        d->agent_active = r->job;
        d->agent_serial = serial;
        d->agent_owner = r->thread;
        d->agent_owner_api = r->api;
    } else if (r->kind == SLOT_ASYNC) {
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
        /* libvirt 11: apiFlags and the job data (jobdata.c) */
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

void
mj_job_withdraw_locked(mj_domain *d, mj_waiter *w)
{
    job_unlink_waiter(d, w);
    d->jobs_queued--;
}

int
mj_job_timeout_error(const mj_domain *d, const job_request *r,
                     const char *blocker)
{
    return job_lock_error(r->kind, blocker ? blocker : job_blocker_api(d, r),
                          MJ_ERR_OPERATION_TIMEOUT, "");
}

/* a queued waiter whose deadline passed leaves the queue failed: it must
 * not be handed a slot its owner has given up on (the owner may not be
 * looking: a busy event loop, a thread between two waits) */
static void
job_expire_waiter(mj_domain *d, mj_waiter *w, const char *blocker)
{
    mj_job_withdraw_locked(d, w);
    w->state = WAITER_FAILED;
    w->fail_code = MJ_ERR_OPERATION_TIMEOUT;
    w->fail_blocker = blocker ? strdup(blocker) : NULL;
    mj_waiter_announce(w);
}

/* Hand the free slots to the queued waiters that may start now, oldest
 * first; expired waiters are failed on the way, not served.  `ended_api`
 * is the owner API of the job whose end frees a slot (NULL otherwise), in
 * the agent slot or not (`ended_agent`): an expired waiter's timeout names
 * it when that is the slot it waited for. */
static void
job_dispatch(mj_domain *d, bool ended_agent, const char *ended_api)
{
    mj_waiter *w = d->head;
    int64_t now = w ? mj_now() : 0;

    /* nobody can start while both the sync and the agent slot are taken */
    while (w && (d->active == MJ_JOB_NONE ||
                 d->agent_active == MJ_AGENT_JOB_NONE)) {
        mj_waiter *next = w->next;

        if (job_may_start(d, &w->req)) {
            if (now >= w->deadline) {
                bool named = ended_api &&
                             (w->req.kind == SLOT_AGENT) == ended_agent;

                job_expire_waiter(d, w, named ? ended_api
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

void mj_job_handoff_locked(mj_domain *d) { job_dispatch(d, false, NULL); }

/* the sync slot is emptied; returns the owner API to free once unlocked */
char *
mj_release_sync_locked(mj_domain *d)
{
    char *api = d->owner_api;

    d->active = MJ_JOB_NONE;
    d->active_serial = 0;
    d->owner = 0;
    d->owner_api = NULL;
    d->jobs_queued--;
    job_dispatch(d, false, api);
    return api;
}

/* the agent slot is emptied; returns the owner API to free once unlocked */
char *
mj_release_agent_locked(mj_domain *d)
{
    char *api = d->agent_owner_api;

    d->agent_active = MJ_AGENT_JOB_NONE;
    d->agent_serial = 0;
    d->agent_owner = 0;
    d->agent_owner_api = NULL;
    d->jobs_queued--;
    job_dispatch(d, true, api);
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
    mj_jobdata_reset_locked(d);            /* apiFlags, post-copy, job data */
    d->jobs_queued--;
    job_dispatch(d, false, api);
    return api;
}

uint64_t
mj_slot_serial(const mj_domain *d, int slot)
{
    switch (slot) {
    case MJ_SLOT_ASYNC: return d->async_serial;
    case MJ_SLOT_AGENT: return d->agent_serial;
    default: return d->active_serial;
    }
}

char *
mj_release_slot_locked(mj_domain *d, int slot)
{
    switch (slot) {
    case MJ_SLOT_ASYNC: return mj_release_async_locked(d);
    case MJ_SLOT_AGENT: return mj_release_agent_locked(d);
    default: return mj_release_sync_locked(d);
    }
}

static int
job_cancelled_error(const mj_domain *d)
{
    return mj_error_set(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: %s",
                        d->cancel_reason ? d->cancel_reason : "shutdown");
}

int
mj_job_failure(const mj_domain *d, const mj_waiter *w)
{
    switch (w->fail_code) {
    case MJ_ERR_OPERATION_ABORTED:
        return job_cancelled_error(d);
    case MJ_ERR_OPERATION_TIMEOUT:
        return job_lock_error(w->req.kind, w->fail_blocker,
                              MJ_ERR_OPERATION_TIMEOUT, "");
    default:
        return mj_error_no_domain(d);
    }
}

/* the checks a begin makes under the lock before it queues; 0 or -1 */
static int
job_admit_locked(mj_domain *d, slot_kind kind, int job, const job_request *req)
{
    if (d->removed || !mj_domain_alive(d))
        return mj_error_no_domain(d);
    if (d->cancelled)
        return job_cancelled_error(d);
    /* qemuMigrationJobIsAllowed, in the begin's own locked step */
    if (req->migration_start && mj_migration_allowed_locked(d) < 0)
        return -1;
    if (kind == SLOT_NESTED && d->async_job != job)
        return mj_error_set(MJ_ERR_INTERNAL_ERROR,
                            "unexpected async job %d type expected %d",
                            job, d->async_job);
    if (job_queue_full(d, req))
        return job_lock_error(kind, job_blocker_api(d, req),
                              MJ_ERR_OPERATION_FAILED, " due to max_queued limit");
    /* libvirt 2011: the reference is taken before waiting; taken here, with
     * the queue count, so nobody sees one without the other */
    return mj_domain_take_ref(d) < 0 ? -1 : 0;
}

/* mj_begin, or with `nowait` a begin that returns MJ_BUSY (no error,
 * nothing changed) where it would have queued */
static int
job_begin_req(mj_domain *d, const job_request *proto, const char *api,
              double timeout, double wait_for, bool nowait)
{
    job_request req = *proto;
    slot_kind kind = req.kind;
    int job = req.job;
    int slot = mj_slot_of(kind);
    uint64_t serial = 0;
    int64_t span;
    mj_waiter *w;
    int rc;

    req.api = NULL;
    req.thread = job_self_id();
    if (mj_seconds_to_ns(timeout, d->default_timeout, &span) < 0 ||
        mj_error_check_wait_for(wait_for) < 0)
        return mj_begin_failed(d, slot);
    if (api && !(req.api = mj_strdup_name(api, &rc)))
        return mj_begin_failed(d, slot);
    pthread_mutex_lock(&d->lock);
    if (job_admit_locked(d, kind, job, &req) < 0) {
        pthread_mutex_unlock(&d->lock);
        free(req.api);
        return mj_begin_failed(d, slot);
    }

    if (nowait && !job_may_start(d, &req)) {
        mj_domain_drop_ref(d);             /* admit's; never the last */
        pthread_mutex_unlock(&d->lock);
        free(req.api);
        mj_begin_failed(d, slot);          /* it left nothing */
        return MJ_BUSY;
    }
    d->jobs_queued++;
    if (job_may_start(d, &req)) {
        serial = job_grant(d, &req);
        pthread_mutex_unlock(&d->lock);
        mj_note_add(d, MJ_NOTE_GRANTED, slot, serial, NULL);
        return mj_granted();
    }

    if (!(w = mj_waiter_new())) {
        d->jobs_queued--;
        pthread_mutex_unlock(&d->lock);
        free(req.api);
        mj_domain_unref_internal(d);
        mj_error_no_memory();
        return mj_begin_failed(d, slot);
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

    rc = mj_waiter_sleep_locked(d, w, wait_for, &serial);
    if (rc == MJ_WAITING) {
        mj_pending_push(w);
        return rc;
    }
    if (rc < 0)
        return mj_begin_failed(d, slot);
    mj_note_add(d, MJ_NOTE_GRANTED, slot, serial, NULL);
    return mj_granted();
}

/* job_begin_req with a request made of these fields (operation: the kind's) */
static int
job_begin(mj_domain *d, slot_kind kind, int job, const char *api,
          double timeout, double wait_for,
          bool set_mask, uint64_t mask, int info_type, bool nowait)
{
    job_request req = {
        .kind = kind, .job = job, .set_mask = set_mask, .mask = mask,
        .info_type = info_type, .operation = -1,
    };

    return job_begin_req(d, &req, api, timeout, wait_for, nowait);
}

int
mj_begin(mj_domain *d, slot_kind kind, int job, const char *api,
         double timeout, double wait_for,
         bool set_mask, uint64_t mask, int info_type)
{
    return job_begin(d, kind, job, api, timeout, wait_for,
                     set_mask, mask, info_type, false);
}

int
mj_begin_req(mj_domain *d, const job_request *req, const char *api,
             double timeout, double wait_for)
{
    return job_begin_req(d, req, api, timeout, wait_for, false);
}

int
mj_begin_nowait(mj_domain *d, slot_kind kind, int job, const char *api)
{
    return job_begin(d, kind, job, api, -1.0, 0.0,
                     false, 0, MJ_JOB_INFO_NONE, true);
}

/* ---- the async job's mask: what may start beside it ---------------------- */

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
        /* a wider mask lets waiters in at once (libvirt 11 leaves them
         * to time out: docs/DECISIONS.md) */
        job_dispatch(d, false, NULL);
    }
    pthread_mutex_unlock(&d->lock);
    return 0;
}
