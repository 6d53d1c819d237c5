/*
 * end.c: the ends (sync, nested, async, agent): each empties its slot, which
 * hands it on (job.c), and gives back the begin's reference; and abort, a
 * begin of the ABORT job that ends it at once, leaving the request for the
 * async job's next mj_check_abort.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <stdlib.h>

static int
end_no_job(void)
{
    return mj_error_set(MJ_ERR_OPERATION_INVALID,
                        "no job is active on the domain");
}

/* after unlocking, with `left` from mj_domain_drop_ref under the lock: the
 * refs left.  The grant's note, if this thread made it, is closed: the job
 * is no begin's to give back any more. */
static int
end_give_back(mj_domain *d, int slot, uint64_t serial, char *api, int left)
{
    free(api);
    mj_note_close(d, slot, MJ_NOTE_GRANTED, serial, NULL);
    if (left == 0)
        mj_domain_die(d);
    return left < 0 ? mj_error_no_domain(d) : left;
}

static int
end_sync(mj_domain *d, bool nested_only)
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
                           : end_no_job();
    }
    serial = d->active_serial;
    api = mj_release_sync_locked(d);
    left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    return end_give_back(d, MJ_SLOT_SYNC, serial, api, left);
}

int mj_end_job(mj_domain *d) { return end_sync(d, false); }
int mj_end_nested_job(mj_domain *d) { return end_sync(d, true); }

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
        return alive ? end_no_job() : mj_error_no_domain(d);
    }
    mj_jobdata_complete_locked(d, copy);   /* the job data's outcome; takes copy */
    serial = d->async_serial;
    api = mj_release_async_locked(d);
    left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    return end_give_back(d, MJ_SLOT_ASYNC, serial, api, left);
}

int
mj_end_agent_job(mj_domain *d)
{
    uint64_t serial;
    char *api;
    int left;

    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d) || d->agent_active == MJ_AGENT_JOB_NONE) {
        bool alive = mj_domain_alive(d);

        pthread_mutex_unlock(&d->lock);
        return alive ? mj_error_set(MJ_ERR_OPERATION_INVALID,
                                    "no agent job is active on the domain")
                     : mj_error_no_domain(d);
    }
    serial = d->agent_serial;
    api = mj_release_agent_locked(d);
    left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    return end_give_back(d, MJ_SLOT_AGENT, serial, api, left);
}

/* ---- abort -------------------------------------------------------------- */

int
mj_abort_job(mj_domain *d, const char *api, double timeout, double wait_for)
{
    int rc = mj_begin_job(d, MJ_JOB_ABORT, api, timeout, wait_for);

    if (rc == MJ_WAITING)
        mj_pending_top()->req.then_abort = true;  /* the waiter just pushed */
    if (rc != 0)
        return rc;
    rc = mj_abort_apply(d);
    /* the apply ended the ABORT job and closed its note: this begin left
     * nothing, and its note must say so (an older note is not its own) */
    mj_note_add(d, MJ_NOTE_FAILED, MJ_SLOT_SYNC, 0, NULL);
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
        rc = end_no_job();
    else if (d->async_job == MJ_ASYNC_JOB_MIGRATION_IN)
        rc = mj_error_set(MJ_ERR_OPERATION_INVALID, "cannot abort incoming "
                          "migration; use virDomainDestroy instead");
    else
        d->abort_requested = true;
    serial = d->active_serial;
    api = mj_release_sync_locked(d);
    left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    end_give_back(d, MJ_SLOT_SYNC, serial, api, left);
    return rc;
}

int
mj_check_abort(mj_domain *d)
{
    int rc = 0;

    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d))
        rc = mj_error_no_domain(d);
    else if (d->async_job != MJ_ASYNC_JOB_NONE && d->abort_requested) {
        /* libvirt's checkpoint records the cancellation in the job data */
        mj_jobdata_cancelled_locked(d);
        rc = mj_error_set(MJ_ERR_OPERATION_ABORTED, "%s: canceled by client",
                          mj_async_job_to_string(d->async_job));
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}
